from django.urls import path

from retention.apis import (
    AgentCapacityView,
    CampaignLearning,
    CouponRedeem,
    DeliveryReceipts,
    OfferPrior,
    QueueCapacityView,
)

urlpatterns = [
    path("coupons/redeem", CouponRedeem.as_view(), name="coupon-redeem"),
    path("outbox/receipts", DeliveryReceipts.as_view(), name="delivery-receipts"),
    path("queues/<str:name>/capacity", QueueCapacityView.as_view(), name="queue-capacity"),
    path("agents/<str:username>/capacity", AgentCapacityView.as_view(), name="agent-capacity"),
    path("offers/<str:pk>", OfferPrior.as_view(), name="offer-prior"),
    path("campaigns/<str:pk>", CampaignLearning.as_view(), name="campaign-learning"),
]
