"""Live media for streams: encode a source with PyAV, cut packets into chunks, reassemble, write.

``packets`` is pure (chunking and reassembly); ``source`` and ``writer`` use
PyAV (imported only when media is made or written).
"""
