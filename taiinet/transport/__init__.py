"""Transport layer: secure links (Noise XX) over memory, WebSocket and WebRTC."""
