"""A small chaos run in the suite: two hosts and two workers on PostgreSQL and one storage,
clients uploading, listing and deleting, and SIGKILLs of random processes; at the end nothing
acknowledged is lost or duplicated (see :mod:`aecflow.testing.chaos` for the invariants).
``bench/scale.py`` runs the same at size and prints throughput."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aecflow.store import scratch
from aecflow.testing.chaos import Ledger, Receiver, chaos, client_mix, settle, verify
from aecflow.testing.cluster import Cluster
from aecflow.testing.databases import admin_url

IFC = Path(__file__).resolve().parents[1] / "../shared/samples/ifc/revit_quantities.ifc"


async def test_nothing_acknowledged_is_lost_or_duplicated_under_kills(tmp_path: Path) -> None:
    problem = await scratch.unreachable(admin_url())
    if problem:
        pytest.skip(f"the chaos run needs PostgreSQL: {problem}")
    async with Receiver().running() as receiver:
        cluster = Cluster(
            tmp_path, hosts=2, workers=2, notifiers=[receiver.notifier()], burn_cpu_s=0.05
        )
        async with cluster:
            ledger, stop = Ledger(), asyncio.Event()
            clients = asyncio.create_task(
                client_mix(
                    cluster, ledger, stop, clients=2, pause_s=0.4, ifc=[IFC] if IFC.exists() else []
                )
            )
            killer = asyncio.create_task(chaos(cluster, stop, every_s=2.0))
            await asyncio.sleep(8)
            stop.set()
            killed = await killer
            await clients
            state = await settle(cluster, timeout_s=90)
            verdict = await verify(cluster, ledger, receiver, state)
            print(verdict.counts, killed, dict(ledger.outcomes))
            assert verdict, "\n".join(verdict.problems[:30]) + "\n" + cluster.tails()
    assert len(killed) >= 3
    assert {name.split("-")[0] for name in killed} == {"host", "worker"}
    assert verdict.counts["acknowledged_uploads"] >= 5
    assert verdict.counts["acknowledged_deletes"] > 0
