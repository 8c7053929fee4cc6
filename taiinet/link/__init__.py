"""The link layer (``docs/protocol.md`` section 4): ``config``, ``registry`` (protocol
ids and codecs, pure), ``manager`` (links, queues, batching, pacing, keep-alive) and
``runner`` (runs any core over the links).  Nothing is imported here, so a codec can
import ``taiinet.link.registry`` without trio."""
