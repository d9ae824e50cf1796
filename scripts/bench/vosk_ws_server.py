#!/usr/bin/env python3
"""A Vosk WebSocket server speaking vosk-server's protocol, for the side-by-side bench
(`cargo bench --bench vosk_side_by_side`). Written for duecall, not copied.

Protocol (as vosk-server's asr_server.py): a client may first send a text message
`{"config": {"sample_rate": 8000, "phrase_list": [...], "words": 1}}`; then binary
messages of 16-bit little-endian mono PCM, each answered with `{"partial": ...}` or, when
Vosk's endpointer closed a segment, a result `{"text": ..., "result": [...]}`; a text
message `{"eof" : 1}` is answered with the final result, and the connection ends.
Recognizer calls run in a thread pool of as many threads as cores (vosk-server's
default), so the event loop only moves messages.

Usage: vosk_ws_server.py MODEL_DIR [PORT] [HOST]   (prints "listening PORT" when ready)
Env: VOSK_SERVER_THREADS (default: the number of cores).
"""

import asyncio
import concurrent.futures
import json
import os
import sys

import vosk
import websockets


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: vosk_ws_server.py MODEL_DIR [PORT] [HOST]")
    model_dir = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 2700
    host = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
    threads = int(os.environ.get("VOSK_SERVER_THREADS", os.cpu_count() or 1))
    vosk.SetLogLevel(-1)
    model = vosk.Model(model_dir)
    pool = concurrent.futures.ThreadPoolExecutor(threads)
    asyncio.run(serve(model, pool, host, port))


def process_chunk(rec, message):
    """One message on the pool: audio -> partial or segment result; eof -> final."""
    if isinstance(message, str):
        if "eof" in message:
            return rec.FinalResult(), True
        return json.dumps({"error": "unexpected text message"}), False
    if rec.AcceptWaveform(message):
        return rec.Result(), False
    return rec.PartialResult(), False


def make_recognizer(model, config):
    rate = float(config.get("sample_rate", 8000))
    phrases = config.get("phrase_list")
    if phrases:
        rec = vosk.KaldiRecognizer(model, rate, json.dumps(phrases, ensure_ascii=False))
    else:
        rec = vosk.KaldiRecognizer(model, rate)
    rec.SetWords(bool(config.get("words", 0)))
    return rec


async def serve(model, pool, host, port):
    loop = asyncio.get_running_loop()

    async def handle(ws):
        rec = None
        config = {}
        async for message in ws:
            if isinstance(message, str) and "config" in message:
                config = json.loads(message).get("config", {})
                rec = None
                continue
            if rec is None:
                rec = await loop.run_in_executor(pool, make_recognizer, model, config)
            response, stop = await loop.run_in_executor(pool, process_chunk, rec, message)
            await ws.send(response)
            if stop:
                break

    async with websockets.serve(handle, host, port, max_size=2**20):
        print(f"listening {port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    main()
