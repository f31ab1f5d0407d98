"""Alert to chat: seconds from an alert being stored to its card reaching the Bot API.

A fresh database (``bench_bot``), AGENTS agents each linked to their own chat, a real
Celery worker (Redis broker) running the card pusher, and a local fake Bot API
(``tests/bots/fake_bot_api.py``) that timestamps every card it receives. Alerts are stored
the way the pipeline stores them (bulk insert, then the ``alerts_changed`` signal), and
each card's latency is its arrival time minus its alert's store time.

Two runs: a steady stream of ALERTS alerts at RATE a second spread over the agents
(target: p95 under 2 s with 1,000 alerts), and the same 1,000 stored in one burst, where
Telegram's 30 messages/s cap alone makes the last card wait about 33 s.

    .venv/bin/python bench/bot.py [--alerts 1000] [--agents 50] [--rate 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

import bootstrap

ROOT = bootstrap.ROOT
bootstrap.configure("bench_bot", CELERY_BROKER_URL="redis://127.0.0.1:6379/13")


def setup(agents: int, alerts: int):
    import datetime as dt

    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from bots.models import AlertCard, ChatLink
    from core.roles import AGENT
    from customers.models import Customer
    from retention.models import Alert, RiskRule

    AlertCard.objects.all().delete()
    Alert.objects.all().delete()
    ChatLink.objects.all().delete()
    Customer.objects.all().delete()
    User.objects.filter(username__startswith="bench-agent-").delete()
    group = Group.objects.get(name=AGENT)
    users = []
    for i in range(agents):
        user = User.objects.create(username=f"bench-agent-{i}", is_staff=True)
        user.groups.add(group)
        ChatLink.objects.create(user=user, chat_id=10_000 + i, linked_at=timezone.now())
        users.append(user)
    Customer.objects.bulk_create(
        Customer(external_id=f"bench-{i}", name=f"Customer {i}", email=f"c{i}@example.com")
        for i in range(alerts)
    )
    customers = list(Customer.objects.order_by("pk"))
    rule = RiskRule.objects.get(name="High churn risk")
    return users, customers, rule, dt


def store(batch, users, rule, now):
    from django.db import transaction

    from retention.models import Alert
    from retention.signals import alerts_changed

    with transaction.atomic():
        Alert.objects.bulk_create(
            Alert(
                customer=customer,
                rule=rule,
                severity="high",
                queue="shared",
                assigned_to=users[customer.pk % len(users)],
                as_of=now.date(),
                raised_at=now,
                probability=0.87,
                tier="high",
                value_at_risk=120.0,
                reasons=["no order for 74 days", "usually orders every 21"],
            )
            for customer in batch
        )
        transaction.on_commit(lambda: alerts_changed.send(sender=Alert, alert_ids=[]))


def measure(api, stored: dict[str, float], timeout: float) -> list[float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        arrived = {}
        for method, params, at in list(api.calls):
            if method == "sendMessage":
                ext = params["text"].split("\n")[1].split(" · ")[0]
                arrived.setdefault(ext, at)
        if len(arrived) >= len(stored):
            return sorted(arrived[k] - stored[k] for k in stored)
        time.sleep(0.2)
    raise SystemExit(f"only {len(arrived)} of {len(stored)} cards arrived in {timeout:.0f} s")


def report(name: str, latencies: list[float]) -> None:
    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))]

    print(
        f"{name}: {len(latencies):,} cards; latency p50 {pct(0.5):.2f} s, p95 {pct(0.95):.2f} s, "
        f"max {latencies[-1]:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20.0, help="alerts stored per second")
    args = parser.parse_args()

    from tests.bots.fake_bot_api import TOKEN, FakeBotApi

    with FakeBotApi() as api:
        os.environ["TELEGRAM_BOT_TOKEN"] = TOKEN
        os.environ["TELEGRAM_API_BASE_URL"] = api.base_url
        from django.utils import timezone

        bootstrap.ready()
        subprocess.run(["redis-cli", "-n", "13", "flushdb"], check=False, capture_output=True)
        worker = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/celery"),
                "-A",
                "retention",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env=os.environ.copy(),
        )
        try:
            time.sleep(4)  # the worker connects
            for name, burst in (("steady stream", False), ("one burst", True)):
                users, customers, rule, _ = setup(args.agents, args.alerts)
                api.calls.clear()
                stored: dict[str, float] = {}
                step = max(1, int(args.rate)) if not burst else len(customers)
                for start in range(0, len(customers), step):
                    batch = customers[start : start + step]
                    store(batch, users, rule, timezone.now())
                    now = time.monotonic()
                    stored.update({c.external_id: now for c in batch})
                    if not burst:
                        time.sleep(step / args.rate)
                report(
                    f"{name} ({args.alerts:,} alerts, {args.agents} chats"
                    + ("" if burst else f", {args.rate:g}/s")
                    + ")",
                    measure(api, stored, timeout=120),
                )
        finally:
            worker.terminate()
            worker.wait(timeout=30)


if __name__ == "__main__":
    main()
