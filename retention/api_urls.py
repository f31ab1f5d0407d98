from django.urls import path

from retention.apis import CampaignLearning, CouponRedeem, DeliveryReceipts, OfferPrior

urlpatterns = [
    path("coupons/redeem", CouponRedeem.as_view(), name="coupon-redeem"),
    path("outbox/receipts", DeliveryReceipts.as_view(), name="delivery-receipts"),
    path("offers/<str:pk>", OfferPrior.as_view(), name="offer-prior"),
    path("campaigns/<str:pk>", CampaignLearning.as_view(), name="campaign-learning"),
]
