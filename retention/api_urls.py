from django.urls import path

from retention.apis import CouponRedeem, DeliveryReceipts

urlpatterns = [
    path("coupons/redeem", CouponRedeem.as_view(), name="coupon-redeem"),
    path("outbox/receipts", DeliveryReceipts.as_view(), name="delivery-receipts"),
]
