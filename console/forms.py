"""Forms of the console: labelled fields, plain error messages."""

from __future__ import annotations

from django import forms

from customers.models import OfferType
from retention.messages import DISMISS_REASONS
from retention.models import Campaign


class TodayFilterForm(forms.Form):
    """Today's filters (GET); every field is optional. The queue chooses the team list
    shown beside the agent's own (the shared one when none is chosen); the others
    narrow both lists."""

    queue = forms.ChoiceField(required=False, label="Team queue")
    tier = forms.ChoiceField(required=False, label="Risk tier")
    stage = forms.ChoiceField(required=False, label="Stage")
    rule = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Rule")
    campaign = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, label="Campaign"
    )
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, data, *, choices: dict[str, list[tuple[str, str]]]) -> None:
        super().__init__(data)
        for name, options in choices.items():
            self.fields[name].choices = options if name == "queue" else [("", "any"), *options]


class DismissForm(forms.Form):
    reason = forms.ChoiceField(
        label="Why dismiss?",
        choices=[(text, text) for text in DISMISS_REASONS.values()] + [("", "other (say why)")],
        required=False,
    )
    note = forms.CharField(label="In your own words", max_length=200, required=False, strip=True)

    def clean(self):
        data = super().clean()
        why = data.get("note") or data.get("reason")
        if not why:
            raise forms.ValidationError(
                "Say why the offer is dismissed: pick a reason or type one."
            )
        data["why"] = why
        return data


class EditOfferForm(forms.Form):
    """Another offer of the campaign, or another value; the limits are checked by the
    service (``intervention_edit``), which names the allowed range when it refuses."""

    offer_type = forms.ChoiceField(label="Kind of offer")
    offer_value = forms.CharField(label="Value", max_length=20, required=False)

    def __init__(self, *args, campaign: Campaign, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        kinds = sorted({o.offer_type for o in campaign.offers.all() if o.is_active})
        self.fields["offer_type"].choices = [(k, OfferType(k).label) for k in kinds]
        ranges = [
            f"{OfferType(k).label.lower()}: {campaign.value_range(k)}"
            for k in kinds
            if campaign.value_range(k) is not None
        ]
        self.fields["offer_value"].help_text = "Allowed: " + "; ".join(ranges) if ranges else ""
