"""Admin for shop data, built for a million customers: indexed search, raw id widgets,
joined foreign keys and capped counts instead of full-table ``COUNT(*)``."""

from __future__ import annotations

from django.contrib import admin

from core.paginators import LargeTableAdmin
from customers.models import (
    Customer,
    Event,
    Order,
    OrderLine,
    Product,
    SyntheticResponse,
    SyntheticShop,
    SyntheticTruth,
)
from customers.privacy_admin import PrivacyActions


@admin.register(Customer)
class CustomerAdmin(PrivacyActions, LargeTableAdmin):
    list_display = ("external_id", "name", "email", "country", "signup_date", "marketing_opt_out")
    search_fields = ("=external_id", "^email", "name")
    list_filter = ("marketing_opt_out", "email_consent", "sms_consent", "webhook_consent")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("external_id", "name", "email", "phone", "country", "time_zone")}),
        ("Lifecycle", {"fields": ("signup_date", "attributes", "created_at", "updated_at")}),
        (
            "Consent",
            {
                "fields": (
                    ("email_consent", "email_consent_at"),
                    ("sms_consent", "sms_consent_at"),
                    ("webhook_consent", "webhook_consent_at"),
                    ("marketing_opt_out", "marketing_opt_out_at"),
                )
            },
        ),
    )


@admin.register(Product)
class ProductAdmin(LargeTableAdmin):
    list_display = ("sku", "name", "category", "price")
    search_fields = ("=sku", "name")
    list_filter = ("category",)


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    raw_id_fields = ("product",)
    extra = 0


@admin.register(Order)
class OrderAdmin(LargeTableAdmin):
    list_display = ("external_id", "customer", "placed_at", "status", "total", "currency")
    list_select_related = ("customer",)
    search_fields = ("=external_id", "=customer__external_id")
    list_filter = ("status", "sales_channel")
    raw_id_fields = ("customer",)
    inlines = (OrderLineInline,)


@admin.register(Event)
class EventAdmin(LargeTableAdmin):
    list_display = ("occurred_at", "kind", "customer", "value")
    list_select_related = ("customer",)
    search_fields = ("=customer__external_id", "=external_id")
    list_filter = ("kind",)
    raw_id_fields = ("customer", "product")


@admin.register(SyntheticShop)
class SyntheticShopAdmin(admin.ModelAdmin):
    list_display = ("id", "seed", "start", "end", "customers", "created_at")
    readonly_fields = ("seed", "start", "end", "customers", "params", "created_at")


@admin.register(SyntheticTruth)
class SyntheticTruthAdmin(LargeTableAdmin):
    list_display = ("customer", "purchase_rate", "dropout_prob", "true_churn_prob")
    list_select_related = ("customer",)
    search_fields = ("=customer__external_id",)
    raw_id_fields = ("customer",)


@admin.register(SyntheticResponse)
class SyntheticResponseAdmin(LargeTableAdmin):
    list_display = ("customer", "offer_type", "purchase_boost", "dropout_shock")
    list_select_related = ("customer",)
    list_filter = ("offer_type",)
    search_fields = ("=customer__external_id",)
    raw_id_fields = ("customer",)
