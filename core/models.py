"""The one table the plumbing needs: job leases."""

from __future__ import annotations

from django.db import models


class JobLock(models.Model):
    """A named lease held by one running job.

    A database row rather than a Redis key so the same lock works on the embedded default
    (SQLite, filesystem broker) and in production; the lease expires so a killed worker
    cannot block a job forever. The table keeps the name it had in ``retention``, where
    the model lived first.
    """

    name = models.CharField(max_length=100, primary_key=True)
    token = models.CharField(max_length=32)
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "retention_joblock"

    def __str__(self) -> str:
        return f"{self.name} until {self.expires_at:%Y-%m-%d %H:%M:%S}"
