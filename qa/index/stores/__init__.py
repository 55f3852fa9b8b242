"""Where an index keeps its vectors: the :class:`~qa.index.stores.base.VectorStore` seam and its backends."""
