"""Per-schema compile cost of three constrained-decoding engines on a real vocabulary (issue 12).

Usage: .venv/bin/python bench/grammar_engines.py PATH/TO/model.gguf SCHEMA.json
xgrammar and outlines-core are not project dependencies: install them beside it to compare
(``pip install --target /tmp/evalenv --no-deps xgrammar apache-tvm-ffi outlines-core`` and PYTHONPATH=/tmp/evalenv).
"""
import json, time, sys
from pathlib import Path
from transformers import AutoTokenizer
g = Path(sys.argv[1]); tok = AutoTokenizer.from_pretrained(str(g.parent), gguf_file=g.name); V = len(tok)
schema = json.loads(Path(sys.argv[2]).read_text())
import llguidance, llguidance.hf
from llguidance import LLMatcher
lt = llguidance.hf.from_tokenizer(tok, n_vocab=V)
t = time.perf_counter(); m = LLMatcher(lt, LLMatcher.grammar_from_json_schema(schema, defaults={"whitespace_flexible": False})); m.compute_bitmask(); a = time.perf_counter() - t
import xgrammar as xgr
comp = xgr.GrammarCompiler(xgr.TokenizerInfo.from_huggingface(tok, vocab_size=V))
t = time.perf_counter(); cg = comp.compile_json_schema(json.dumps(schema), any_whitespace=False); mt = xgr.GrammarMatcher(cg); bm = xgr.allocate_token_bitmask(1, V); mt.fill_next_token_bitmask(bm); b = time.perf_counter() - t
from outlines_core import Guide, Index, Vocabulary
from outlines_core.json_schema import build_regex_from_schema
table = {}
for token, i in tok.get_vocab().items():
    if i != tok.eos_token_id: table.setdefault(token, []).append(i)
vocab = Vocabulary(tok.eos_token_id, table)
t = time.perf_counter(); guide = Guide(Index(build_regex_from_schema(json.dumps(schema)), vocab)); guide.get_tokens(); c = time.perf_counter() - t
print(f"per-schema first mask: llguidance {a*1000:.1f} ms, xgrammar {b*1000:.1f} ms, outlines-core {c*1000:.1f} ms")
