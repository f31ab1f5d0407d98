"""Bulk orders API throughput, end to end through Django's URL, auth and view stack."""

from __future__ import annotations

import time
import uuid

import numpy as np


def bench_api(*, orders: int, batch: int = 5_000) -> float:
    """Orders per second for ``orders`` new orders with two lines each, posted in batches
    by an Admin's token (customers are created through the API first, untimed)."""
    from django.contrib.auth.models import Group, User
    from django.utils import timezone
    from rest_framework.test import APIClient

    from core.roles import ADMIN
    from retention.services.tokens import api_token_create

    run = uuid.uuid4().hex[:8]
    user = User.objects.create_user(f"bench-{run}", is_staff=True)
    user.groups.add(Group.objects.get(name=ADMIN))
    client = APIClient()
    _, token = api_token_create(user=user, now=timezone.now())
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    customers = max(orders // 10, 1)
    for lo in range(0, customers, batch):
        records = [{"external_id": f"api-{run}-{i}"} for i in range(lo, min(lo + batch, customers))]
        client.post("/api/v1/customers/bulk", records, format="json")

    rng = np.random.default_rng(0)
    owner = rng.integers(0, customers, orders)
    started = time.perf_counter()
    created = 0
    for lo in range(0, orders, batch):
        records = [
            {
                "external_id": f"api-{run}-o{i}",
                "customer": f"api-{run}-{owner[i]}",
                "placed_at": "2026-01-05T10:00:00Z",
                "lines": [
                    {"sku": "A", "quantity": 1, "unit_price": "9.90"},
                    {"sku": "B", "quantity": 2, "unit_price": "4.50"},
                ],
            }
            for i in range(lo, min(lo + batch, orders))
        ]
        response = client.post("/api/v1/orders/bulk", records, format="json")
        created += response.json()["created"]
    seconds = time.perf_counter() - started
    print(f"bulk orders API: {created:,} orders in {seconds:.1f} s ({batch:,} per request)")
    user.delete()
    return created / seconds
