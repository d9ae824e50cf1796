#!/usr/bin/env python3
"""Converts a PocketSphinx `sendump` (8-bit quantised senone mixture weights)
back to a Sphinx-III `mixture_weights` file, which SphinxTrain's `bw` needs
for adaptation. Port of SphinxTrain's python/cmusphinx/sendump.py."""
import struct, sys, array

def main(src, dst):
    f = open(src, 'rb')
    fmt = ['<I']
    def rd_int():
        b = f.read(4)
        n = struct.unpack(fmt[0], b)[0]
        if n > 65536:
            fmt[0] = '>I'
            n = struct.unpack(fmt[0], b)[0]
        return n
    def rd_str():
        n = rd_int()
        return None if n == 0 else f.read(n)[:-1].decode()
    rd_str()  # title
    hdr = {}
    while True:
        h = rd_str()
        if h is None:
            break
        parts = h.split()
        if len(parts) == 2 and parts[1].isdigit():
            hdr[parts[0]] = int(parts[1])
    shift = hdr.get('mixw_shift', 10)
    nfeat = hdr.get('feature_count', 0)
    if hdr.get('cluster_count', 0) != 0:
        sys.exit('clustered sendump not supported')
    ndens = rd_int()    # rows: codewords
    nsen = rd_int()     # columns: senones
    print(f'senones {nsen}, features {nfeat}, densities {ndens}', file=sys.stderr)
    table = [1.0001 ** (-(q << shift)) for q in range(256)]
    # sendump is [feature][density][senone]; mixw is [senone][feature][density]
    out = array.array('f', bytes(4 * nsen * nfeat * ndens))
    for i in range(nfeat):
        for j in range(ndens):
            row = f.read(nsen)
            base = i * ndens + j
            for s, q in enumerate(row):
                out[(s * nfeat) * ndens + base] = table[q]
    o = open(dst, 'wb')
    head = b's3\nversion 1.0\n'
    lsb = (len(head) + len(b'endhdr\n')) & 3
    head += (b' ' * (4 - lsb) if lsb else b'') + b'endhdr\n'
    o.write(head)
    o.write(struct.pack('=i', 0x11223344))
    o.write(struct.pack('=IIII', nsen, nfeat, ndens, nsen * nfeat * ndens))
    out.tofile(o)

if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
