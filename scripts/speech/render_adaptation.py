#!/usr/bin/env python3
"""Renders adaptation clips: the example replies (prompts/en.replies.tsv and
en.replies.extra.tsv; the first argument lists TSV files separated by ":") in
espeak-ng voices NOT used by the speech evaluation, through the same phone
line (8 kHz, pink noise 15-25 dB SNR, u-law) and the decoder's 2x linear
upsampler, as 16 kHz WAVs plus SphinxTrain control and transcript files."""
import audioop, os, random, subprocess, sys, wave, array, math
tsv, out, dictf = sys.argv[1], sys.argv[2], sys.argv[3]
per_text = int(sys.argv[4]) if len(sys.argv) > 4 else 2
VOICES = ["en-029", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc",
          "en-us+m1", "en-us+m3", "en-us+f2", "en-us+f5", "en-us+m5", "en-gb+f1", "en-029+f2"]
words = set(l.split()[0] for l in open(dictf, encoding='utf-8', errors='replace') if l.strip())
os.makedirs(out + "/wav", exist_ok=True)
rng = random.Random(7)
subprocess.run(["sox", "-V1", "-R", "-n", "-r", "8000", "-c", "1", "-b", "16", out + "/noise.wav",
                "synth", "30", "pinknoise", "vol", "0.5"], check=True)
with wave.open(out + "/noise.wav") as w:
    noise = array.array('h', w.readframes(w.getnframes()))
nrms = math.sqrt(sum(x * x for x in noise[:80000]) / 80000)
texts = []
lines = []
for f in tsv.split(':'):
    with open(f, encoding='utf-8') as fh:
        lines.extend(fh)
for line in lines:
    if line.startswith('#') or '\t' not in line:
        continue
    t = line.split('\t', 1)[1].strip().lower()
    toks = t.split()
    if toks and all(x in words for x in toks):
        texts.append(t)
ids, trans = [], []
n = 0
for t in texts:
    for k in range(per_text):
        v = rng.choice(VOICES)
        speed, pitch = rng.randint(140, 185), rng.randint(30, 70)
        snr, level = rng.randint(15, 25), rng.randint(-28, -16)
        uid = f"a{n:05d}"
        n += 1
        raw = f"{out}/wav/{uid}.raw.wav"
        subprocess.run(["espeak-ng", "-v", v, "-s", str(speed), "-p", str(pitch), "-w", raw, t], check=True)
        low = f"{out}/wav/{uid}.8k.wav"
        subprocess.run(["sox", "-V1", raw, "-r", "8000", "-c", "1", "-b", "16", low], check=True)
        with wave.open(low) as w:
            s = array.array('h', w.readframes(w.getnframes()))
        os.remove(raw); os.remove(low)
        # active level: frames within 30 dB of the loudest
        fr = [sum(x * x for x in s[i:i + 160]) / 160 for i in range(0, len(s) - 160, 160)]
        pk = max(fr) if fr else 1
        loud = [e for e in fr if e > pk * 1e-3] or [1]
        act = 10 * math.log10(max(sum(loud) / len(loud) / 32768 ** 2, 1e-10))
        g = 10 ** ((level - act) / 20)
        sig = [0.0] * 4000 + [x * g for x in s] + [0.0] * 2400
        want = 32768 * 10 ** ((level - snr) / 20)
        ng = want / max(nrms, 1)
        off = rng.randrange(0, len(noise) - len(sig))
        mixed = array.array('h', (max(-32768, min(32767, int(round(x + noise[off + i] * ng)))) for i, x in enumerate(sig)))
        line = audioop.ulaw2lin(audioop.lin2ulaw(mixed.tobytes(), 2), 2)
        a = array.array('h', line)
        up = array.array('h')
        prev = None
        for x in a:
            p = x if prev is None else prev
            up.append(int((p + x) / 2))
            up.append(x)
            prev = x
        with wave.open(f"{out}/wav/{uid}.wav", "wb") as w:
            w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
            w.writeframes(up.tobytes())
        ids.append(uid)
        trans.append(f"<s> {t} </s> ({uid})")
open(out + "/train.fileids", "w").write("\n".join(ids) + "\n")
open(out + "/train.transcription", "w").write("\n".join(trans) + "\n")
print(len(texts), "texts,", n, "clips", file=sys.stderr)
