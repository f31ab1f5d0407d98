from __future__ import annotations

from rest_framework import serializers

from customers.models import Customer, Order, OrderLine


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = [
            "external_id", "name", "email", "phone", "country", "time_zone", "signup_date",
            "email_consent", "sms_consent", "webhook_consent", "marketing_opt_out",
            "attributes", "created_at", "updated_at",
        ]  # fmt: skip


class CustomerDetailSerializer(CustomerSerializer):
    order_count = serializers.IntegerField(read_only=True)
    # Null for a customer without orders.
    total_spent = serializers.DecimalField(
        max_digits=14, decimal_places=2, read_only=True, allow_null=True
    )
    last_order_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta(CustomerSerializer.Meta):
        fields = [*CustomerSerializer.Meta.fields, "order_count", "total_spent", "last_order_at"]


class OrderLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderLine
        fields = ["position", "sku", "quantity", "unit_price", "amount"]


class OrderSerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.external_id", read_only=True)
    lines = OrderLineSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "external_id", "customer", "placed_at", "status", "total", "currency",
            "sales_channel", "lines",
        ]  # fmt: skip


class BatchErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    field = serializers.CharField()
    message = serializers.CharField()


class BatchResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    errors = BatchErrorSerializer(many=True)
