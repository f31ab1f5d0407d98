"""Training, the champion gate, rollback and bulk scoring: every write of the ml app.

Time: training at ``as_of`` evaluates on the latest cut-off whose labels are complete
(``as_of - horizon``) and trains only on cut-offs whose labels ended before that holdout
began (``<= as_of - 2 * horizon``), so no label the holdout scores leaks into training.
The artefact stored is exactly the one whose holdout metrics are shown.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import pickle
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass

import lightgbm
import numpy as np
import pandas as pd
import sklearn
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from customers.models import Order
from customers.selectors import erased_customer_ids
from ml import bgnbd, drift, season, stages
from ml.explain import predict_and_explain
from ml.features import FEATURE_NAMES, build_features
from ml.labels import churn_labels
from ml.metrics import evaluate
from ml.models import ChurnDefinition, CustomerScore, ModelVersion, ScoringRun
from ml.partitions import scores_drop, scores_write
from ml.reasons import TEXT, TOO_LITTLE_HISTORY, as_json_lists, reason_texts
from ml.selectors import active_definition, champion, usable_champion
from ml.signals import champion_changed
from ml.training import ALGORITHMS, BASELINE, Dataset, TrainedModel, choose, train_zoo

# A candidate may replace the champion if it is no worse on the same holdout, within these.
AUC_TOLERANCE = 0.005
BRIER_TOLERANCE = 0.002
SCORE_REFERENCE = "__score__"
RECOMMENDED_PRODUCTS = 3  # per customer, kept with each run for product-recommendation offers


@dataclass
class CutoffData:
    """Features and labels of the modelled population at one cut-off."""

    as_of: dt.date
    features: pd.DataFrame
    labels: np.ndarray


def _modelled(features: pd.DataFrame, definition: ChurnDefinition) -> pd.DataFrame:
    """Customers with enough history for the model; the rest get BG/NBD scores."""
    return features[features["tenure_days"] >= definition.min_history_days]


def cutoff_data(*, as_of: dt.date, definition: ChurnDefinition) -> CutoffData:
    features = build_features(as_of=as_of, definition=definition).frame
    features = _modelled(features, definition)
    return CutoffData(
        as_of, features, churn_labels(features.index, as_of=as_of, definition=definition)
    )


def stack(parts: Sequence[CutoffData]) -> Dataset:
    return Dataset(
        X=pd.concat([p.features for p in parts], ignore_index=True),
        y=np.concatenate([p.labels for p in parts]),
        customer_ids=np.concatenate([p.features.index.to_numpy() for p in parts]),
        cutoffs=np.concatenate(
            [np.full(len(p.labels), np.datetime64(p.as_of, "D")) for p in parts]
        ),
    )


def training_cutoffs(*, last: dt.date, count: int, step_days: int) -> list[dt.date]:
    return [last - dt.timedelta(days=k * step_days) for k in range(count)][::-1]


def _library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "lightgbm": lightgbm.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }


def load_model(version: ModelVersion) -> TrainedModel:
    """Unpickle an artefact after checking it is byte for byte what was trained."""
    blob = bytes(version.artifact)
    if hashlib.sha256(blob).hexdigest() != version.checksum:
        raise ValueError(f"model #{version.pk}: artefact checksum mismatch, refusing to load")
    return pickle.loads(blob)  # written by this app and verified above


def _register(
    model: TrainedModel,
    *,
    as_of: dt.date,
    definition: ChurnDefinition,
    train: Dataset,
    cutoffs: list[dt.date],
    holdout: CutoffData,
) -> ModelVersion:
    scores = model.predict_proba(holdout.features)
    metrics = evaluate(holdout.labels, scores, threshold=definition.high_threshold)
    metrics["validation_auc"] = model.validation_auc
    metrics["validation_auc_std"] = model.validation_auc_std
    metrics["validation_folds"] = model.validation_folds
    metrics["validation_brier"] = model.validation_brier
    reference = {
        "medians": train.X[model.features].median().to_dict(),
        "bins": drift.comparable_reference(train.X[FEATURE_NAMES], train.cutoffs),
        "score_bins": drift.reference(pd.DataFrame({SCORE_REFERENCE: scores})),
    }
    blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    return ModelVersion.objects.create(
        algorithm=model.algorithm,
        params=model.params,
        features=model.features,
        definition=definition,
        definition_fingerprint=definition.fingerprint(),
        trained_as_of=as_of,
        training_cutoffs=[d.isoformat() for d in cutoffs],
        holdout_cutoff=holdout.as_of,
        training_rows=len(train.y),
        holdout_rows=len(holdout.labels),
        metrics=metrics,
        search=model.search,
        reference=_json_safe(reference),
        library_versions=_library_versions(),
        fit_seconds=model.fit_seconds,
        artifact=blob,
        checksum=hashlib.sha256(blob).hexdigest(),
    )


def _json_safe(value):
    """NaN is not JSON; the registry stores it as null."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


@dataclass
class TrainingResult:
    candidates: list[ModelVersion]
    best: ModelVersion
    promoted: bool
    gate: str


def with_baseline(algorithms: Sequence[str]) -> list[str]:
    """The requested algorithms with recency alone always among them: it is the bar every
    champion must clear."""
    return [BASELINE, *(a for a in algorithms if a != BASELINE)]


def train_models(
    *,
    as_of: dt.date,
    algorithms: Sequence[str] = ALGORITHMS,
    training_cutoff_count: int = 3,
    step_days: int = 30,
    seed: int = 0,
) -> TrainingResult:
    """Train the zoo (recency alone always included), register every model as a candidate
    with its holdout metrics, choose one on the validation folds and promote it if it
    passes the champion gate."""
    definition = active_definition()
    horizon = dt.timedelta(days=definition.horizon_days)
    holdout = cutoff_data(as_of=as_of - horizon, definition=definition)
    cutoffs = training_cutoffs(
        last=as_of - 2 * horizon, count=training_cutoff_count, step_days=step_days
    )
    train = stack([cutoff_data(as_of=c, definition=definition) for c in cutoffs])
    if len(holdout.labels) == 0 or len(np.unique(holdout.labels)) < 2:
        raise ValueError(
            f"the holdout at {holdout.as_of} has no customers with both outcomes; "
            "there is not enough history before as_of to train"
        )
    models = train_zoo(
        train, features=FEATURE_NAMES, algorithms=with_baseline(algorithms), seed=seed
    )
    chosen = choose(models)
    with transaction.atomic():
        versions = [
            _register(
                m, as_of=as_of, definition=definition, train=train, cutoffs=cutoffs, holdout=holdout
            )
            for m in models
        ]
        best = versions[models.index(chosen)]
        baseline = versions[0]
        promoted, gate = gate_and_promote(candidate=best, baseline=baseline, holdout=holdout)
    return TrainingResult(versions, best, promoted, gate)


def gate_and_promote(
    *, candidate: ModelVersion, baseline: ModelVersion, holdout: CutoffData
) -> tuple[bool, str]:
    """Promote ``candidate`` unless recency alone beats it on the holdout (then recency
    alone stands in for it) or the champion, scored on the same holdout, is better by more
    than the tolerances. Returns whether a model was promoted and why."""
    below = ""
    if candidate.metrics["auc"] < baseline.metrics["auc"]:
        below = (
            f"{candidate.algorithm} (#{candidate.pk}) holdout AUC {candidate.metrics['auc']:.4f}"
            f" is below recency alone's {baseline.metrics['auc']:.4f}, so recency alone "
            "stands in for it; "
        )
        candidate = baseline
    current = champion()
    if current is None or current.definition_fingerprint != candidate.definition_fingerprint:
        promote(version=candidate)
        return True, f"{below}no usable champion"
    champ_scores = load_model(current).predict_proba(holdout.features)
    champ = evaluate(holdout.labels, champ_scores, threshold=0.5)
    auc, brier = candidate.metrics["auc"], candidate.metrics["brier"]
    verdict = (
        f"{below}candidate #{candidate.pk} AUC {auc:.4f} Brier {brier:.4f} vs champion "
        f"#{current.pk} AUC {champ['auc']:.4f} Brier {champ['brier']:.4f} on {holdout.as_of}"
    )
    if auc >= champ["auc"] - AUC_TOLERANCE and brier <= champ["brier"] + BRIER_TOLERANCE:
        promote(version=candidate)
        return True, verdict
    return False, verdict


@transaction.atomic
def promote(*, version: ModelVersion, user=None, via: str = "task") -> ModelVersion:
    """Make ``version`` the champion; ``user`` and ``via`` say who asked, for the audit
    log (kept by the retention app through ``champion_changed``)."""
    previous = champion()
    ModelVersion.objects.filter(status=ModelVersion.Status.CHAMPION).exclude(pk=version.pk).update(
        status=ModelVersion.Status.RETIRED
    )
    version.status = ModelVersion.Status.CHAMPION
    version.promoted_at = timezone.now()
    version.save(update_fields=["status", "promoted_at"])
    champion_changed.send(
        sender=ModelVersion,
        version=version,
        previous=previous if previous and previous.pk != version.pk else None,
        action="promoted",
        user=user,
        via=via,
    )
    return version


@transaction.atomic
def rollback(*, user=None, via: str = "task") -> ModelVersion:
    """Retire the champion and bring back the one promoted before it."""
    current = champion()
    if current is None:
        raise ValueError("there is no champion to roll back")
    previous = (
        ModelVersion.objects.filter(status=ModelVersion.Status.RETIRED, promoted_at__isnull=False)
        .exclude(pk=current.pk)
        .order_by("-promoted_at")
        .first()
    )
    if previous is None:
        raise ValueError(f"champion #{current.pk} has no predecessor to roll back to")
    current.status = ModelVersion.Status.RETIRED
    current.promoted_at = None  # so a second rollback goes further back, not forth
    current.save(update_fields=["status", "promoted_at"])
    previous.status = ModelVersion.Status.CHAMPION
    previous.save(update_fields=["status"])
    champion_changed.send(
        sender=ModelVersion,
        version=previous,
        previous=current,
        action="rolled_back",
        user=user,
        via=via,
    )
    return previous


def _score_frame(
    features: pd.DataFrame,
    *,
    model: TrainedModel,
    version: ModelVersion,
    params: bgnbd.BGNBDParams,
    definition: ChurnDefinition,
) -> pd.DataFrame:
    horizon = definition.horizon_days
    modelled = features.index.isin(_modelled(features, definition).index)
    x = features["frequency"] - 1
    t_x = features["tenure_days"] - features["recency_days"]
    T = features["tenure_days"]
    # In average days, as the models' probabilities are moved to the window's season.
    seasonal_horizon = features[season.HORIZON].to_numpy(float)
    probability = bgnbd.p_no_purchase(params, x, t_x, T, seasonal_horizon)
    # Arrow strings from the reasons to the COPY: Python str objects for a million JSON
    # lists cost a conversion each way.
    reasons = pd.Series(f'["{TOO_LITTLE_HISTORY}"]', index=features.index, dtype=TEXT)
    if modelled.any():
        X = features[modelled]
        medians = pd.Series(version.reference["medians"], dtype=float)
        probability[modelled], contrib = predict_and_explain(model, X, reference=medians)
        texts = reason_texts(X, contrib, model.features, horizon_days=horizon)
        reasons[modelled] = as_json_lists(texts)
    expected_spend = features["monetary_avg"] * bgnbd.purchase_rate_if_alive(params, x, T) * horizon
    return pd.DataFrame(
        {
            "customer_id": features.index,
            "probability": probability,
            "tier": definition.tiers(probability),
            "expected_spend": expected_spend.round(2).to_numpy(),
            "value_at_risk": (probability * expected_spend).round(2).to_numpy(),
            "source": np.where(
                modelled, CustomerScore.Source.MODEL.value, CustomerScore.Source.BGNBD.value
            ),
            "stage": stages.stages(
                definition.stage_thresholds(),
                probability=probability,
                p_alive=features["bgnbd_p_alive"].to_numpy(float),
                recency_days=features["recency_days"].to_numpy(float),
            ),
            "reasons": reasons.array,
        }
    )


def score_customers(
    *, as_of: dt.date, rescore: bool = False, keep_runs: int | None = None
) -> ScoringRun:
    """Score every customer with an order before the cut-off; one run, bulk-written.

    A day already scored by the same champion is not scored again unless ``rescore``:
    a retried or duplicated nightly task must not double the work or the alerts after it.
    """
    definition = active_definition()
    version = usable_champion(definition)
    if not rescore:
        done = ScoringRun.objects.filter(
            as_of=as_of, model_version=version, status=ScoringRun.Status.DONE
        ).first()
        if done is not None:
            return done
    model = load_model(version)
    run = ScoringRun.objects.create(as_of=as_of, model_version=version)
    try:
        seconds = {}
        started = time.perf_counter()
        features, params, picks = build_features(
            as_of=as_of, definition=definition, picks=RECOMMENDED_PRODUCTS
        )
        # Erased customers keep their orders for campaign measurement, but are scored,
        # alerted on and written to run files no more.
        erased = erased_customer_ids()
        if erased:
            features = features.drop(index=erased, errors="ignore")
        seconds["features"] = time.perf_counter() - started

        started = time.perf_counter()
        frame = _score_frame(
            features, model=model, version=version, params=params, definition=definition
        )
        frame.insert(0, "run_id", run.pk)
        seconds["predict"] = time.perf_counter() - started

        started = time.perf_counter()
        reference = version.reference
        psi = drift.comparable_psi(reference["bins"], features)
        psi |= drift.psi(
            reference["score_bins"], pd.DataFrame({SCORE_REFERENCE: frame["probability"]})
        )
        attach_frame(run, features=features, picks=picks)
        with transaction.atomic():
            scores_write(run_id=run.pk, frame=frame)
            run.status = ScoringRun.Status.DONE
            run.finished_at = timezone.now()
            run.customers_scored = len(frame)
            run.tier_counts = frame["tier"].value_counts().to_dict()
            run.stage_counts = frame["stage"].value_counts().to_dict()
            run.drift = {k: round(v, 4) for k, v in psi.items()}
            run.max_psi = max(psi.values(), default=0.0)
            run.drift_flagged = run.max_psi > drift.DRIFT_THRESHOLD
            seconds["write"] = time.perf_counter() - started
            run.seconds = {k: round(v, 3) for k, v in seconds.items()}
            run.save()
    except Exception as exc:
        ScoringRun.objects.filter(pk=run.pk).update(
            status=ScoringRun.Status.FAILED, finished_at=timezone.now(), error=repr(exc)
        )
        raise
    prune_runs(keep=keep_runs or settings.ML_KEEP_SCORING_RUNS)
    return run


def attach_frame(run: ScoringRun, *, features: pd.DataFrame, picks: pd.DataFrame) -> None:
    """Keep the run's features and product picks beside its scores, so rules (and an
    admin previewing one) and offers read them in a second instead of recomputing minutes
    of SQL. The scores themselves are only in ``CustomerScore``, which every reader joins
    (``ml.selectors.run_frame``): a second copy here would be read in a second precision.
    float32 halves the file; this is the only stored copy of the features."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        customer_id=features.index.to_numpy(np.int64),
        columns=np.array(FEATURE_NAMES),
        values=features[FEATURE_NAMES].to_numpy(np.float32),
        picks=picks.reindex(features.index).to_numpy(np.int64),
    )
    run.frame.save(f"run-{run.pk}.npz", ContentFile(buffer.getvalue()), save=False)


def prune_runs(*, keep: int) -> int:
    """Delete the scores of all but the newest ``keep`` finished runs (and failed runs)."""
    done = ScoringRun.objects.filter(status=ScoringRun.Status.DONE).order_by("-as_of", "-id")
    kept = list(done.values_list("pk", flat=True)[:keep])
    old = ScoringRun.objects.exclude(pk__in=kept).exclude(status=ScoringRun.Status.RUNNING)
    for run in old.exclude(frame=""):
        run.frame.delete(save=False)
    scores_drop(run_ids=list(old.values_list("pk", flat=True)))
    deleted, _ = old.delete()
    return deleted


def data_ends() -> dt.date | None:
    last = Order.objects.order_by("-placed_at").values_list("placed_at", flat=True).first()
    return last.date() if last else None
