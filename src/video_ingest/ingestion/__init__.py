"""Running items: the ID list, the flows, batches, slots, handlers and summaries."""
