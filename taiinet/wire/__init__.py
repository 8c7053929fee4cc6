"""Wire layer: protobuf messages, framing, identities and signed envelopes."""
