"""LLMOS-DATA-007 as a hypothesis state machine: random sequences of dataset operations against a shadow store.

Rules create, append (valid and invalid batches), derive into the same and into a new dataset, query
and export any version (present or not) and delete; after every step each dataset the kit holds
must stand at the version and record count the shadow predicts, and each deleted one must stay gone.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from conformance.checks.data_management.driver import (
    DATASETS,
    append,
    create,
    derived,
    discard,
    export,
    get,
    query_all,
    ref,
    send,
)
from conformance.checks.data_management.shadow import ShadowStore, first_difference
from conformance.context import Context
from conformance.judging import expect_error, ok_json
from conformance.registry import check
from conformance.machines import Tally, recorded as record_failures, run_machine
from conformance.verdicts import CheckFailed, CheckOutcome

STEPS = 12
MAX_DATASETS = 3

_texts = st.sampled_from((" Hello ", "hello", "HELLO", "a\u3000b ", "x", "", "\u00c9t\u00e9"))
_records = st.lists(st.builds(lambda t, n: {"text": t, "n": n}, _texts, st.integers(0, 3)), min_size=1, max_size=4)
_not_objects = st.sampled_from((5, "text", [1], None, True))
_pipelines = st.lists(st.sampled_from(({"op": "strip", "field": "text"}, {"op": "lowercase", "field": "text"}, {"op": "dedupe", "field": "text"})), min_size=1, max_size=3)
_picks = st.integers(0, MAX_DATASETS - 1)
_versions = st.integers(-1, 6)
"""A version to read: -1 names none (the latest); numbers past the latest must be 404."""


def _machine(ctx: Context, tally: Tally) -> type[RuleBasedStateMachine]:
    recorded = record_failures(tally)

    class Datasets(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            tally.examples += 1
            self.run = tally.examples
            self.made = 0
            self.store = ShadowStore()
            self.order: list[str] = []
            """Dataset ids in the order made (rules pick by position)."""
            self.trace: list[str] = []

        def _step(self, text: str) -> None:
            tally.steps += 1
            self.trace.append(text)

        def _suffix(self) -> str:
            self.made += 1
            return f"dsm{self.run}-{self.made}"

        def _pick(self, index: int) -> str:
            return self.order[index % len(self.order)]

        # ------------------------------------------------------------ rules

        @precondition(lambda self: len(self.order) < MAX_DATASETS)
        @rule()
        @recorded
        def make_dataset(self) -> None:
            suffix = self._suffix()
            name = ctx.name(suffix)
            self._step(f"create {name}")
            made = create(ctx, suffix)
            if (made["version"], made["record_count"]) != (1, 0):
                raise CheckFailed(f"{name} created at version 1 with no records", repr({k: made[k] for k in ("version", "record_count")}), exchange=ctx.wire.last)
            self.store.create(made["id"], name)
            self.order.append(made["id"])

        @precondition(lambda self: bool(self.order))
        @rule(pick=_picks, records=_records)
        @recorded
        def append_batch(self, pick: int, records: list[dict[str, Any]]) -> None:
            dataset_id = self._pick(pick)
            shadow = self.store.datasets[dataset_id]
            self._step(f"append {len(records)} to {dataset_id}")
            answer = append(ctx, dataset_id, records)
            shadow.append(records)
            if (answer["version"], answer["record_count"]) != (shadow.latest, len(shadow.records())):
                raise CheckFailed(f"the append making version {shadow.latest} with {len(shadow.records())} records",
                                  repr({k: answer[k] for k in ("version", "record_count")}), exchange=ctx.wire.last)

        @precondition(lambda self: bool(self.order))
        @rule(pick=_picks, records=_records, bad=_not_objects, at=st.integers(0, 4))
        @recorded
        def append_invalid_batch(self, pick: int, records: list[dict[str, Any]], bad: Any, at: int) -> None:
            dataset_id = self._pick(pick)
            position = min(at, len(records))
            batch: list[Any] = [*records[:position], bad, *records[position:]]
            self._step(f"append to {dataset_id} a batch with {bad!r} at {position}")
            exchange = send(ctx, "POST", f"{DATASETS}/{dataset_id}/records", {"records": batch})
            expect_error(exchange, ("record_invalid",), param=f"records.{position}")

        @precondition(lambda self: bool(self.order))
        @rule(pick=_picks, version=_versions, pipeline=_pipelines, into_new=st.booleans())
        @recorded
        def derive_pipeline(self, pick: int, version: int, pipeline: list[dict[str, Any]], into_new: bool) -> None:
            dataset_id = self._pick(pick)
            shadow = self.store.datasets[dataset_id]
            if into_new and len(self.order) >= MAX_DATASETS:
                into_new = False
            source = None if version < 1 else version
            name = ctx.name(self._suffix()) if into_new else None
            self._step(f"derive {ref(dataset_id, source)} {[s['op'] for s in pipeline]}" + (f" into {name}" if name else ""))
            if source is not None and not shadow.has(source):
                body = {"pipeline": pipeline, **({"name": name} if name else {})}
                expect_error(send(ctx, "POST", f"{DATASETS}/{ref(dataset_id, source)}/derive", body), ("dataset_version_not_found",))
                return
            result, exchange = derived(ctx, ref(dataset_id, source), pipeline, name=name)
            read = shadow.latest if source is None else source
            if name is None:
                self.store.derive(dataset_id, read, pipeline)
                if result != {"dataset_id": dataset_id, "version": shadow.latest}:
                    raise CheckFailed(f"the derive making version {shadow.latest} of {dataset_id}", repr(result), exchange=exchange)
            else:
                if result["version"] != 1 or result["dataset_id"] in self.store.datasets:
                    raise CheckFailed(f"the derive making a new dataset {name} at version 1", repr(result), exchange=exchange)
                self.store.derive(dataset_id, read, pipeline, into=(result["dataset_id"], name))
                self.order.append(result["dataset_id"])
            made = self.store.datasets[result["dataset_id"]]
            exchange, records = export(ctx, ref(result["dataset_id"], result["version"]))
            diff = first_difference(made.records(result["version"]), records)
            if diff is not None:
                raise CheckFailed(f"the derive's output: {[s['op'] for s in pipeline]} applied to {ref(dataset_id, read)}", diff, exchange=exchange)

        @precondition(lambda self: bool(self.order))
        @rule(pick=_picks, version=_versions, exported=st.booleans())
        @recorded
        def read_version(self, pick: int, version: int, exported: bool) -> None:
            dataset_id = self._pick(pick)
            shadow = self.store.datasets[dataset_id]
            number = None if version < 1 else version
            target = ref(dataset_id, number)
            self._step(f"{'export' if exported else 'query'} {target}")
            if number is not None and not shadow.has(number):
                path = f"{DATASETS}/{target}/export" if exported else f"{DATASETS}/{target}/query"
                expect_error(send(ctx, "GET" if exported else "POST", path, None if exported else {}), ("dataset_version_not_found",))
                return
            if exported:
                exchange, records = export(ctx, target)
            else:
                read = query_all(ctx, target, {"limit": 3})
                exchange, records = read.last, [r for _, r in read.rows]
                if read.version != (number or shadow.latest):
                    raise CheckFailed(f"the query of {target} reading version {number or shadow.latest}", f"version {read.version}", exchange=exchange)
            diff = first_difference(shadow.records(number), records)
            if diff is not None:
                raise CheckFailed(f"{target} holding what the steps so far put there", diff, exchange=exchange)

        @precondition(lambda self: bool(self.order))
        @rule(pick=_picks)
        @recorded
        def delete_dataset(self, pick: int) -> None:
            dataset_id = self._pick(pick)
            self._step(f"delete {dataset_id}")
            ok_json(send(ctx, "DELETE", f"{DATASETS}/{dataset_id}"), "DeletedObject")
            self.store.delete(dataset_id)
            self.order.remove(dataset_id)

        # ------------------------------------------------------------ invariants

        @invariant()
        @recorded
        def matches_shadow(self) -> None:
            for dataset_id, shadow in self.store.datasets.items():
                seen = get(ctx, dataset_id)
                if (seen["version"], seen["record_count"]) != (shadow.latest, len(shadow.records())):
                    raise CheckFailed(f"after {' ; '.join(self.trace[-3:])}: {dataset_id} at version {shadow.latest} with {len(shadow.records())} records",
                                      f"version {seen['version']}, {seen['record_count']} records", exchange=ctx.wire.last)
            for dataset_id in self.store.deleted:
                expect_error(ctx.wire.request("GET", f"{DATASETS}/{dataset_id}"), ("dataset_not_found",))

        def teardown(self) -> None:
            for dataset_id in list(self.store.datasets):
                discard(ctx, dataset_id)

    return Datasets


@check("dataset_state_machine")
def dataset_state_machine(ctx: Context) -> CheckOutcome:
    tally = Tally()
    return run_machine(_machine(ctx, tally), tally, seed_value=ctx.settings.seed, examples=ctx.settings.max_examples, steps=STEPS)
