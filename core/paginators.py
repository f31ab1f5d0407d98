"""Admin pagination that never counts a million rows."""

from __future__ import annotations

from functools import cached_property

from django.contrib import admin
from django.core.paginator import Paginator
from rest_framework.pagination import CursorPagination


class CappedCountPaginator(Paginator):
    """Counts at most ``CAP`` rows: ``SELECT COUNT(*) FROM (... LIMIT CAP)`` stays cheap on
    any table size, and nobody pages past the ten-thousandth row of a change list anyway;
    search and filters narrow it instead."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list.values("pk")[: self.CAP].count()


class LargeTableAdmin(admin.ModelAdmin):
    """Base for change lists over tables with millions of rows."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50


class NewestFirstCursor(CursorPagination):
    """Stable paging through millions of rows: no page counts, no OFFSET scans."""

    ordering = ("-id",)
