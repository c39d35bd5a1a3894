"""Task post-processing: the streamed deltas always add up to the unstreamed output."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reference_impl.tasks import StreamCleaner, postprocess

ECHO = "Translate the following text into French.\n\nHello"
PREFIX = "Translation:"
pieces = st.sampled_from([" ", "\n", "\u3000", "Trans", "late", ECHO, PREFIX, "Bonjour", " le", " monde", "Translation", ":", "\u001c"])


def test_echoes_prefix_and_white_space_are_removed() -> None:
    assert postprocess(f"  {ECHO}\n {PREFIX} Bonjour\u3000\n", (ECHO, PREFIX)) == "Bonjour"
    assert postprocess(f"{PREFIX} Bonjour", (ECHO, PREFIX)) == "Bonjour"
    # Only a leading echo goes; the same text later is content.
    assert postprocess(f"Bonjour {PREFIX}", (ECHO, PREFIX)) == f"Bonjour {PREFIX}"
    # U+001C is not White_Space, although Python's str.strip removes it.
    assert postprocess("\u001cBonjour", ()) == "\u001cBonjour"


def test_an_unfinished_echo_is_kept_when_the_generation_ends() -> None:
    assert postprocess("Transl", (ECHO, PREFIX)) == "Transl"


@given(st.lists(pieces, max_size=12))
def test_streamed_deltas_concatenate_to_the_unstreamed_output(chunks: list[str]) -> None:
    cleaner = StreamCleaner((ECHO, PREFIX))
    streamed = "".join(cleaner.feed(chunk) for chunk in chunks) + cleaner.finish()
    assert streamed == postprocess("".join(chunks), (ECHO, PREFIX))
