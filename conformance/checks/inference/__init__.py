"""inference: completions and chat, streaming, concurrency overflow and disconnects."""
