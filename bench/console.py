"""Server time of every console page: each requested REPEAT times through Django's test
client (no browser, no network) against the configured database, as an agent and as an
Admin; prints p50 and p95 per page. Target: p95 <= 300 ms on the 1M-customer shop that
``bench/score.py`` and ``bench/pipeline.py`` leave in ``bench_score`` (Today stays inside
it because each of its lists walks a partial index of waiting cases in priority order and
stops, never reading the scores table).

The first request of each page is a warm-up, printed as "first" but not counted
(connection, template compilation, and the overview, which is kept for a minute). Read-only:
no button is pressed.

    .venv/bin/python bench/console.py [--repeat 50]
    DATABASE_URL=postgres://.../hconsole .venv/bin/python bench/console.py --repeat 5
"""

from __future__ import annotations

import argparse
import time

import bootstrap
import numpy as np

bootstrap.configure("bench_score", ALLOWED_HOSTS="testserver,localhost,127.0.0.1")
TARGET_MS = 300


def _user(name: str, role: str):
    from django.contrib.auth.models import Group, User

    user, _ = User.objects.get_or_create(username=name, defaults={"is_staff": True})
    user.groups.add(Group.objects.get(name=role))
    return user


def pages() -> list[tuple[str, str]]:
    """(role, url) of every console page, with a real customer, campaign and version."""
    from django.urls import reverse

    from ml.models import ModelVersion
    from retention.models import Alert, Campaign, RiskRule

    today = reverse("console:today")
    top = Alert.objects.filter(planned_on__isnull=False).order_by("-priority").first()
    customer = top.customer if top else None
    rule = RiskRule.objects.filter(is_active=True).order_by("-priority").first()
    campaign = Campaign.objects.order_by("-pk").first()
    version = ModelVersion.objects.filter(status="champion").first()
    urls = [("agent", today), ("agent", reverse("console:campaigns"))]
    if campaign:
        urls.append(("agent", reverse("console:campaign", args=[campaign.pk])))
    urls.append(("agent", today + "?page=4"))
    if rule:  # as its admin page links to it
        urls.append(("agent", f"{today}?rule={rule.pk}&queue={rule.queue}"))
    if customer:
        urls.append(("agent", reverse("console:customer", args=[customer.external_id])))
    urls.append(("admin", reverse("console:overview")))
    models = reverse("console:models") + (f"?version={version.pk}" if version else "")
    urls.append(("admin", models))
    return urls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()

    bootstrap.ready()
    from django.db import connection
    from django.test import Client

    from core.roles import ADMIN, AGENT

    clients = {}
    for role, name, group in (
        ("agent", "bench-console-agent", AGENT),
        ("admin", "bench-console-admin", ADMIN),
    ):
        clients[role] = Client()
        clients[role].force_login(_user(name, group))
    print(f"database {connection.settings_dict['NAME']}: {args.repeat} requests per page")
    worst = 0.0
    for role, url in pages():
        client = clients[role]
        started = time.perf_counter()
        first = client.get(url)
        cold = (time.perf_counter() - started) * 1000
        if first.status_code != 200:
            raise SystemExit(f"{url} as {role}: HTTP {first.status_code}")
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        p50, p95 = np.percentile(times, [50, 95])
        worst = max(worst, p95)
        flag = "" if p95 <= TARGET_MS else f"  (over {TARGET_MS} ms)"
        print(f"{role:5} {url:45} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  first {cold:7.1f} ms{flag}")
    print(f"worst p95 {worst:.1f} ms (target {TARGET_MS} ms)")


if __name__ == "__main__":
    main()
