"""What the HTTP backends share: one keep-alive client per batch, and the mapping of
status codes to temporary (retry) and permanent (give up) failures."""

from __future__ import annotations

import httpx

from retention.channels import PermanentFailure, TemporaryFailure


class HttpBackend:
    dedupes_by_key = True  # the key travels in the Idempotency-Key header
    concurrent = True  # httpx.Client is thread-safe and pools its connections

    def __init__(self, timeout: float) -> None:
        self.client = httpx.Client(timeout=timeout)

    def post(self, url: str, *, content: bytes, headers: dict[str, str]) -> httpx.Response:
        try:
            response = self.client.post(url, content=content, headers=headers)
        except httpx.TransportError as exc:
            raise TemporaryFailure(f"{url} unreachable: {exc!r}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TemporaryFailure(f"{url} answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentFailure(
                f"{url} refused the message: {response.status_code} {response.text[:200]}"
            )
        return response

    def close(self) -> None:
        self.client.close()
