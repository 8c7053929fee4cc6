"""Media sources: a generated test pattern, or a file, encoded with PyAV to VP8 + Opus.

Both yield ``MediaPacket``s with the time (seconds from the start) at which
each is due, so the publisher can pace a file as if it were live.  The
video encoder runs in real-time mode with no look-ahead (one packet per
frame, no added latency) and a keyframe every ``keyframe_seconds`` or on
``force_keyframe()``.
"""

from __future__ import annotations

import fractions
from collections.abc import Iterator
from typing import Any

from taiinet.media.packets import MediaPacket
from taiinet.stream.codec import Track

#: Default picture size and rate of the test pattern.
WIDTH, HEIGHT, FPS = 320, 240, 15
SAMPLE_RATE = 48_000
#: Samples per Opus frame (20 ms).
AUDIO_FRAME = 960


class Encoder:
    """VP8 video + Opus audio encoders with a forced-keyframe switch."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT, fps: int = FPS,
                 keyframe_seconds: float = 2.0, bitrate: int = 300_000) -> None:
        import av

        self.fps = fps
        video: Any = av.CodecContext.create("libvpx", "w")
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = fractions.Fraction(1, fps)
        video.framerate = fps
        video.bit_rate = bitrate
        video.gop_size = max(1, int(keyframe_seconds * fps))
        video.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        video.open()
        audio: Any = av.CodecContext.create("libopus", "w")
        audio.sample_rate, audio.layout, audio.format = SAMPLE_RATE, "mono", "s16"
        audio.time_base = fractions.Fraction(1, SAMPLE_RATE)
        audio.open()
        self.video, self.audio = video, audio
        self._force = False
        self.tracks = (
            Track(codec="vp8", width=width, height=height, rate=fps),
            Track(codec="opus", rate=SAMPLE_RATE, channels=1,
                  extradata=bytes(audio.extradata or b"")),
        )

    def force_keyframe(self) -> None:
        self._force = True

    def video_frame(self, frame: Any, index: int) -> list[MediaPacket]:
        import av

        frame = frame.reformat(width=self.video.width, height=self.video.height,
                               format="yuv420p")
        frame.pts = index
        frame.time_base = self.video.time_base
        if self._force:
            frame.pict_type = av.video.frame.PictureType.I
            self._force = False
        return [MediaPacket(track=0, pts=int(p.pts), keyframe=bool(p.is_keyframe), data=bytes(p))
                for p in self.video.encode(frame)]

    def audio_frame(self, frame: Any) -> list[MediaPacket]:
        return [MediaPacket(track=1, pts=int(p.pts), keyframe=True, data=bytes(p))
                for p in self.audio.encode(frame)]


def test_pattern(encoder: Encoder,
                 duration: float | None) -> Iterator[tuple[float, list[MediaPacket]]]:
    """Moving colour bars with a frame counter band, and a 440 Hz tone with a beep each second."""
    import av
    import numpy as np

    width, height, fps = encoder.video.width, encoder.video.height, encoder.fps
    bars = np.array([[235, 235, 235], [235, 235, 16], [16, 235, 235], [16, 235, 16],
                     [235, 16, 235], [235, 16, 16], [16, 16, 235], [16, 16, 16]], np.uint8)
    base = np.repeat(bars, -(-width // len(bars)), axis=0)[:width]
    samples = 0
    index = 0
    while duration is None or index / fps < duration:
        t = index / fps
        image = np.broadcast_to(np.roll(base, index * 4, axis=0), (height, width, 3)).copy()
        band = (index % width)
        image[height // 2 - 8:height // 2 + 8, :band] = 255
        out = encoder.video_frame(av.VideoFrame.from_ndarray(image, format="rgb24"), index)
        while samples < (index + 1) * SAMPLE_RATE // fps:
            n = np.arange(samples, samples + AUDIO_FRAME)
            tone = 880.0 if (n[0] // SAMPLE_RATE) % 2 else 440.0
            pcm = (np.sin(2 * np.pi * tone * n / SAMPLE_RATE) * 6000).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = samples
            out.extend(encoder.audio_frame(frame))
            samples += AUDIO_FRAME
        yield t, out
        index += 1


def file_source(path: str, encoder: Encoder,
                duration: float | None) -> Iterator[tuple[float, list[MediaPacket]]]:
    """A media file's video (and audio, if any) re-encoded to the stream's tracks, paced by pts."""
    import av

    container: Any = av.open(path)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    fifo = av.AudioFifo()
    index = 0
    try:
        streams = [s for s in (container.streams.video[:1] + container.streams.audio[:1])]
        for frame in container.decode(*streams):
            t = float(frame.time or 0.0)
            if duration is not None and t >= duration:
                break
            if isinstance(frame, av.VideoFrame):
                # Re-timed to the stream's rate: frames between two ticks are dropped.
                tick = round(t * encoder.fps)
                if tick >= index:
                    index = tick + 1
                    yield t, encoder.video_frame(frame, tick)
            else:
                out: list[MediaPacket] = []
                for resampled in resampler.resample(frame):
                    resampled.pts = None
                    fifo.write(resampled)
                while fifo.samples >= AUDIO_FRAME:
                    chunk = fifo.read(AUDIO_FRAME)
                    out.extend(encoder.audio_frame(chunk))
                if out:
                    yield t, out
    finally:
        container.close()
