"""Tools of the speech-quality benchmark (scripts/quality, scripts/pesq).

    speech.py pesq REF.wav DEG.wav          PESQ-WB MOS-LQO of DEG against REF
    speech.py prepare IN.wav OUT.wav        48 kHz mono 16-bit, with 0.5 s of silence each side
    speech.py drops SEED PERCENT COUNT OUT  indices of packets to lose, one per line
    speech.py relay LISTEN DEST DROPS       UDP relay on 127.0.0.1 losing the listed RTP packets
    speech.py raw2wav RAW RATE OUT.wav      S16LE mono raw audio to WAV

PESQ-WB (ITU-T P.862.2) scores 16 kHz audio: both files are resampled to 16 kHz, and the
degraded one is aligned with the reference by cross-correlation (a conference adds a delay of
its own) and cut to the reference's length before scoring.
"""

import random
import socket
import struct
import sys
import wave
from math import gcd

import numpy as np
from scipy.signal import correlate, resample_poly


def read_wav(path):
    """Mono float samples in [-1, 1] and the sample rate."""
    with wave.open(path, "rb") as wav:
        rate = wav.getframerate()
        channels = wav.getnchannels()
        width = wav.getsampwidth()
        frames = wav.readframes(wav.getnframes())
    if width != 2:
        sys.exit(f"{path}: 16-bit PCM expected")
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    return samples.reshape(-1, channels).mean(axis=1), rate


def write_wav(path, samples, rate):
    data = np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(data.tobytes())


def resample(samples, rate, target):
    if rate == target:
        return samples
    common = gcd(rate, target)
    return resample_poly(samples, target // common, rate // common)


def aligned(reference, degraded):
    """`degraded` shifted so that it lines up with `reference`, at the reference's length."""
    lag = int(np.argmax(correlate(degraded, reference, mode="full", method="fft"))) - (
        len(reference) - 1
    )
    if lag > 0:
        degraded = degraded[lag:]
    else:
        degraded = np.concatenate([np.zeros(-lag), degraded])
    out = np.zeros(len(reference))
    n = min(len(out), len(degraded))
    out[:n] = degraded[:n]
    return out


def pesq_wb(reference_path, degraded_path):
    from pesq import pesq

    reference, rate = read_wav(reference_path)
    degraded, degraded_rate = read_wav(degraded_path)
    reference = resample(reference, rate, 16000)
    degraded = aligned(reference, resample(degraded, degraded_rate, 16000))
    return pesq(16000, reference, degraded, "wb")


def prepare(source, target):
    samples, rate = read_wav(source)
    samples = resample(samples, rate, 48000)
    samples = 0.5 * samples / max(np.max(np.abs(samples)), 1e-9)
    pad = np.zeros(24000)
    write_wav(target, np.concatenate([pad, samples, pad]), 48000)


def drops(seed, percent, count, path):
    rng = random.Random(seed)
    # The first packets always arrive, so that every run starts its stream alike.
    lost = [i for i in range(count) if i >= 5 and rng.random() * 100 < percent]
    with open(path, "w") as out:
        out.write("".join(f"{i}\n" for i in lost))


def relay(listen, dest, drops_path):
    """Forwards RTP from 127.0.0.1:listen to 127.0.0.1:dest, losing the packets whose index
    (sequence number counted from the first packet) is listed; stops 3 s after the stream
    ends."""
    with open(drops_path) as f:
        lost = {int(line) for line in f if line.strip()}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", listen))
    first = None
    forwarded = dropped = 0
    while True:
        sock.settimeout(None if first is None else 3.0)
        try:
            data = sock.recv(2048)
        except socket.timeout:
            break
        if len(data) < 12:
            continue
        sequence = struct.unpack("!H", data[2:4])[0]
        if first is None:
            first = sequence
        if (sequence - first) & 0xFFFF in lost:
            dropped += 1
            continue
        sock.sendto(data, ("127.0.0.1", dest))
        forwarded += 1
    print(f"relay: forwarded {forwarded}, lost {dropped}", file=sys.stderr)


def raw2wav(raw, rate, path):
    with open(raw, "rb") as f:
        data = f.read()
    data = data[: len(data) - len(data) % 2]
    write_wav(path, np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0, rate)


def main(args):
    usage = __doc__.strip().splitlines()[2:7]
    if not args:
        sys.exit("\n".join(usage))
    command, rest = args[0], args[1:]
    if command == "pesq" and len(rest) == 2:
        print(f"{pesq_wb(*rest):.3f}")
    elif command == "prepare" and len(rest) == 2:
        prepare(*rest)
    elif command == "drops" and len(rest) == 4:
        drops(int(rest[0]), float(rest[1]), int(rest[2]), rest[3])
    elif command == "relay" and len(rest) == 3:
        relay(int(rest[0]), int(rest[1]), rest[2])
    elif command == "raw2wav" and len(rest) == 3:
        raw2wav(rest[0], int(rest[1]), rest[2])
    else:
        sys.exit("\n".join(usage))


if __name__ == "__main__":
    main(sys.argv[1:])
