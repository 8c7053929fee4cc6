"""Write received packets to a file PyAV and common players open (stream copy, no re-encode).

The container follows the file's extension (``.webm``, ``.mkv``, ...).  Time
stamps are shifted so the file starts at zero; a packet older than the last
one written on its track is dropped (the muxer needs them in order).
"""

from __future__ import annotations

import fractions
from typing import Any

from taiinet.media.packets import MediaPacket
from taiinet.stream.codec import Track


class MediaWriter:
    def __init__(self, path: str, tracks: tuple[Track, ...]) -> None:
        import av

        self._av = av
        self._out: Any = av.open(path, "w")
        self._streams: list[Any] = []
        self._bases = [fractions.Fraction(1, t.rate) for t in tracks]
        for track in tracks:
            stream: Any
            if track.is_video:
                stream = self._out.add_stream(track.codec, rate=track.rate)
                stream.width, stream.height, stream.pix_fmt = track.width, track.height, "yuv420p"
            else:
                stream = self._out.add_stream(track.codec, rate=track.rate)
                stream.layout = "mono" if track.channels <= 1 else "stereo"
                if track.extradata:
                    stream.codec_context.extradata = track.extradata
            stream.time_base = fractions.Fraction(1, track.rate)
            self._streams.append(stream)
        self._start: float | None = None
        self._last = [-1] * len(tracks)
        self.packets = 0
        #: Seconds of media per track written (last pts - first pts).
        self.first_pts: list[int | None] = [None] * len(tracks)

    def write(self, packet: MediaPacket) -> None:
        track = packet.track
        if not 0 <= track < len(self._streams):
            return
        base = self._bases[track]
        seconds = float(packet.pts * base)
        if self._start is None:
            self._start = seconds
        pts = round((seconds - self._start) / base)
        if pts <= self._last[track]:
            return
        self._last[track] = pts
        if self.first_pts[track] is None:
            self.first_pts[track] = pts
        out = self._av.Packet(packet.data)
        out.pts = out.dts = pts
        out.time_base = base
        out.stream = self._streams[track]
        out.is_keyframe = packet.keyframe
        self._out.mux(out)
        self.packets += 1

    def close(self) -> None:
        self._out.close()
