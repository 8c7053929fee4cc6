"""``taiinet stream publish`` / ``taiinet stream watch``: live video and audio over a relay tree."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

import trio

from taiinet.cli import tls
from taiinet.cli.args import int_at_least, positive_float
from taiinet.cli.node import common_options, links_option, node_config, setup
from taiinet.cli.run import run_trio
from taiinet.node.node import open_node


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "stream", help="broadcast or watch live video and audio over a relay tree",
        description="Live streams (docs/stream.md): one broadcaster, viewers relay to a few.")
    commands = parser.add_subparsers(dest="stream_command", required=True)
    pub = commands.add_parser(
        "publish", help="broadcast a file or a test pattern (VP8 + Opus)",
        description="Broadcast FILE (any format PyAV reads, re-encoded to VP8 + Opus) or a "
                    "generated test pattern, paced in real time. Prints one JSON line of "
                    "figures at the end.")
    pub.add_argument("--name", required=True, help="the stream's name")
    source = pub.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", metavar="FILE", help="a media file")
    source.add_argument("--test-pattern", action="store_true",
                        help="colour bars and a tone instead of a file")
    pub.add_argument("--duration", type=positive_float, metavar="S",
                     help="stop after S seconds of media (default: the whole file; the "
                          "test pattern runs until interrupted)")
    pub.add_argument("--slots", type=int_at_least(1), default=4, metavar="N",
                     help="viewers the broadcaster feeds directly (default 4)")
    pub.add_argument("--size", default="320x240", metavar="WxH", help="picture size")
    pub.add_argument("--fps", type=int_at_least(1), default=15, help="frames per second")
    common_options(pub)
    pub.set_defaults(handler=publish_command)
    watch = commands.add_parser(
        "watch", help="watch a stream and write it to a file",
        description="Watch a stream (relaying it to --slots viewers) and write it to FILE; "
                    "the container follows the extension (.webm, .mkv). Prints one JSON "
                    "line of figures at the end; on stderr, 'watching PEER-ID NAME' first and "
                    "'parent PEER-ID' (or 'parent none') at every change of parent.")
    watch.add_argument("--name", required=True, help="the stream's name")
    watch.add_argument("--out", required=True, metavar="FILE", help="where to write the media")
    watch.add_argument("--duration", type=positive_float, metavar="S",
                       help="stop after S seconds (default: when the stream ends)")
    watch.add_argument("--slots", type=int_at_least(0), default=2, metavar="N",
                       help="viewers this one relays to (default 2)")
    watch.add_argument("--find-timeout", type=positive_float, default=30.0, metavar="S",
                       help="give up if no announcement of the stream came in S seconds")
    common_options(watch)
    watch.set_defaults(handler=watch_command)


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size {text!r}: expected WIDTHxHEIGHT") from None
    if not (16 <= width <= 4096 and 16 <= height <= 4096) or width % 2 or height % 2:
        raise argparse.ArgumentTypeError("--size: even sides of 16..4096")
    return width, height


async def _set_on_sigterm(event: trio.Event, *,
                          task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Set ``event`` at the first SIGTERM (a second one terminates as usual): a command
    stopped by its supervisor still closes its file and prints its figures."""
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        task_status.started()
        async for _ in signals:
            event.set()
            return


def publish_command(args: argparse.Namespace) -> int:
    from taiinet.media.live import broadcast

    width, height = _size(args.size)
    identity = setup(args)
    links = links_option(args)

    async def main() -> None:
        stop = trio.Event()
        async with open_node(args.signaller, identity, links=links, config=node_config(args),
                             ssl_context=tls.client_tls(args)) as node, \
                trio.open_nursery() as nursery:  # inside the node: its cancel spares the node
            await nursery.start(_set_on_sigterm, stop)
            print(f"publishing {node.peer_id} {args.name}", file=sys.stderr, flush=True)
            report = await broadcast(node, args.name, file=args.file, duration=args.duration,
                                     slots=args.slots, width=width, height=height, fps=args.fps,
                                     stop=stop)
            nursery.cancel_scope.cancel()
            print(json.dumps({"chunks": report.chunks, "bytes_made": report.bytes_made,
                              "bytes_sent": report.bytes_sent,
                              "upload_streams": round(report.upload_streams, 3),
                              "most_children": report.most_children, "slots": report.slots,
                              "keyframe_requests": report.keyframe_requests}), flush=True)

    run_trio(main)
    return 0


def watch_command(args: argparse.Namespace) -> int:
    from taiinet.media.live import watch

    identity = setup(args)
    links = links_option(args)

    async def main() -> None:
        stop = trio.Event()
        async with open_node(args.signaller, identity, links=links, config=node_config(args),
                             ssl_context=tls.client_tls(args)) as node, \
                trio.open_nursery() as nursery:  # inside the node: its cancel spares the node
            await nursery.start(_set_on_sigterm, stop)
            print(f"watching {node.peer_id} {args.name}", file=sys.stderr, flush=True)

            def parent_changed(parent: str | None) -> None:
                print(f"parent {parent or 'none'}", file=sys.stderr, flush=True)

            report = await watch(node, args.name, args.out, duration=args.duration,
                                 slots=args.slots, timeout=args.find_timeout,
                                 on_parent=parent_changed, stop=stop)
            nursery.cancel_scope.cancel()
            print(json.dumps({"packets": {str(k): v for k, v in report.packets.items()},
                              "chunks": report.chunks, "parent_changes": report.parent_changes,
                              "lost_chunks": report.lost_chunks,
                              "skipped_packets": report.skipped_packets,
                              "keyframe_requests": report.keyframe_requests,
                              "watched": round(report.watched, 2),
                              "stopped": report.stopped}), flush=True)

    run_trio(main)
    return 0
