"""The run's configuration sections (model, optim, data, injection, eval, train) and their
fields, each with the description that ``--explain`` and docs/config.md print.

Types are strict (a YAML ``true`` is no count, a quoted ``"0.1"`` no rate), so a typo fails
with one line instead of running something else; counts and rates are bounded where a wrong
sign would silently train a different experiment (a negative learning rate ascends the loss).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)


class _Section(BaseModel):
    """Strict types, no unknown keys, and assignments checked too: a typo is refused, never
    silently ignored or coerced."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True)


def _tuple(value: object) -> object:
    """YAML has no tuples: a list is one."""
    return tuple(value) if isinstance(value, list) else value


Beta = Annotated[float, Field(ge=0, lt=1)]


class ModelShape(_Section):
    """A model's architecture, as its ``config.json`` states it: enough to build the model on
    torch's meta device, so ``--dry-run`` counts its parameters without a download."""

    family: Literal["llama", "olmo", "gpt_neox"] = Field(
        ..., description="transformers model type: llama, olmo (OLMo-1), gpt_neox (Pythia)"
    )
    layers: int = Field(..., ge=1, description="decoder layers")
    hidden_size: int = Field(..., ge=1, description="model width")
    intermediate_size: int = Field(..., ge=1, description="MLP width")
    heads: int = Field(..., ge=1, description="attention heads")
    kv_heads: int | None = Field(None, ge=1, description="key/value heads; null = heads")
    vocab_size: int = Field(..., ge=1, description="vocabulary size (embedding rows)")
    tie_embeddings: bool = Field(..., description="the output layer shares the input embeddings")

    @model_validator(mode="after")
    def _check(self) -> ModelShape:
        if self.hidden_size % self.heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of heads ({self.heads})"
            )
        kv = self.kv_heads or self.heads
        if self.heads % kv:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({kv})")
        if self.family == "gpt_neox" and kv != self.heads:
            raise ValueError("gpt_neox has no grouped-query attention: kv_heads must be null")
        return self


class ModelConfig(_Section):
    """The model to continue and how it runs: where its weights come from, the precision,
    the device and the memory savers."""

    name: str | None = Field(
        None,
        description="the model to continue: a local directory or a Hugging Face hub id; "
        "null = factdyn's cached tiny base (`factdyn train` fills it in and says so)",
    )
    revision: str | None = Field(
        None,
        description="hub revision of model.name (branch, tag or commit), e.g. an intermediate "
        "checkpoint such as step113000-tokens500B; null = the default branch",
    )
    base_step: int | None = Field(
        None,
        ge=0,
        description="pretraining step of the checkpoint (meta.json; where the lr schedule "
        "resumes); null = the step in its state.json (a factdyn base), else unknown",
    )
    dtype: Literal["fp32", "bf16"] = Field(
        "fp32",
        description="fp32, or bf16 for mixed precision (bf16 matrix products; weights and "
        "AdamW state stay fp32)",
    )
    device: str = Field(
        "auto",
        description="auto (a GPU when there is one, else the CPU), cpu, cuda or cuda:N; under "
        "torchrun each process takes its own GPU",
    )
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in the backward pass: less memory, more time"
    )
    compile: bool = Field(
        False, description="torch.compile the model (faster steps on a GPU after a slow first)"
    )
    compile_backend: Literal["inductor", "aot_eager", "eager"] = Field(
        "inductor",
        description="torch.compile's backend when model.compile is on: inductor generates "
        "kernels; aot_eager and eager only trace (they check that the model compiles, in seconds "
        "on a CPU)",
    )
    fsdp: bool = Field(
        False,
        description="with torchrun: shard weights, gradients and AdamW state over the processes "
        "(FSDP2) instead of copying them to each (DDP)",
    )
    shape: ModelShape | None = Field(
        None,
        description="the architecture, so that `--dry-run` needs no download (the presets carry "
        "it); it does not change training. null = read the model's config.json",
    )


class OptimConfig(_Section):
    """AdamW and its learning-rate schedule; a continued run resumes the base's schedule
    where its pretraining stopped unless told otherwise."""

    lr: float | None = Field(
        None,
        gt=0,
        description="peak learning rate; null = the checkpoint's last one (a factdyn base records "
        "it; other models need it set)",
    )
    schedule: Literal["constant", "linear", "cosine"] = Field(
        "constant",
        description="learning-rate schedule: constant, or linear/cosine decay to "
        "min_lr_ratio × lr at schedule_total",
    )
    warmup_steps: int = Field(0, ge=0, description="steps of linear warmup from 0 to lr")
    schedule_start: int | None = Field(
        None,
        ge=0,
        description="schedule position at step 0, to continue a schedule in its middle; null = "
        "model.base_step (0 when unknown)",
    )
    schedule_total: int | None = Field(
        None, ge=1, description="length of the whole schedule; null = start + train.steps"
    )
    min_lr_ratio: float = Field(
        0.0, ge=0, le=1, description="the decaying schedules end at this fraction of lr"
    )
    betas: Annotated[tuple[Beta, Beta], BeforeValidator(_tuple)] = Field(
        (0.9, 0.95), description="AdamW's β1 and β2"
    )
    eps: float = Field(1e-8, gt=0, description="AdamW's ε")
    weight_decay: float = Field(0.0, ge=0, description="AdamW's decoupled weight decay")
    decay_exclude: list[Literal["norm", "bias", "embedding"]] = Field(
        [],
        description="parameter kinds AdamW does not decay, as in the base model's own recipe: "
        "norm (norm layers' weights), bias (every .bias), embedding (input embeddings)",
    )
    grad_clip: float | None = Field(
        1.0, gt=0, description="clip the gradient's global norm to this; null = no clipping"
    )
    load_state: bool = Field(
        True,
        description="restore AdamW's moments when the checkpoint has them (optimizer.pt); "
        "false = fresh moments",
    )


class DataConfig(_Section):
    """The background text the injected knowledge is mixed into, and where in it the run
    starts reading."""

    source: Literal["world", "text", "hf", "olmo"] = Field(
        "world",
        description="the background text: world (from `factdyn generate`), text (.txt/.jsonl "
        "files or a folder of them), hf (a hub dataset id or a save_to_disk folder), olmo "
        "(OLMo's tokenized Dolma shards)",
    )
    path: str | None = Field(
        None,
        description="the world folder, text file or folder, dataset, or OLMo index; required "
        "but for olmo (`factdyn train` fills in factdyn's cached world)",
    )
    files: list[str] | str | None = Field(
        None, description="olmo: the token shards in order, or a .txt file listing them"
    )
    dtype: Literal["uint16", "uint32"] = Field(
        "uint16", description="olmo: integer type of the shards' token ids"
    )
    hf_split: str = Field("train", description="hf: the dataset split to read")
    text_field: str = Field(
        "text", description="text (.jsonl) and hf: the field holding each document's text"
    )
    seq_len: int = Field(
        256, ge=2, description="tokens per training sequence; every injected text must fit"
    )
    start: int | None = Field(
        None,
        ge=0,
        description="first background sequence the run reads; null = where the base's "
        "pretraining stopped (0 for a model that does not record it)",
    )
    seed: int = Field(
        0,
        description="order of the background sequences (hf and olmo: 0 = the dataset's own); "
        "another seed is a replicate with other training noise",
    )


class ScenarioConfig(_Section):
    """One way of injecting a share of the items: how often, how far apart, with which
    text (one entry of ``injection.scenarios``)."""

    name: str = Field(..., description="the scenario's name in the logs (not 'control')")
    variant: Literal["paraphrase", "duplicate"] = Field(
        "duplicate",
        description="paraphrase: injection i is the item's paraphrase i (the first its "
        "train_context); duplicate: its train_context every time",
    )
    count: int = Field(..., ge=1, description="injections of each item")
    interval: int | None = Field(
        None, ge=1, description="steps between an item's injections; null = injection.interval"
    )
    first_step: int | None = Field(
        None,
        ge=0,
        description="step of the first injection; null = injection.first_step + its place × "
        "injection.scenario_offset",
    )
    n_items: int | None = Field(None, ge=1, description="items it injects; null = an equal share")


class ScheduleEntry(_Section):
    """One explicit injection: this item's text in this step's batch (one entry of
    ``injection.schedule``)."""

    step: int = Field(..., ge=0, description="the step whose batch carries the text")
    item: int = Field(..., ge=0, description="the item's index in the items file")
    variant: int = Field(0, ge=0, description="0 = train_context, i = paraphrases[i-1]")
    scenario: str = Field("custom", description="the scenario it counts for in the analysis")


class InjectionConfig(_Section):
    """The knowledge items and when each is injected: split among the scenarios, in
    cohorts with staggered starts, beside controls that are never injected."""

    items: str | None = Field(
        None,
        description="the knowledge items: a .json/.jsonl file, a dataset folder or hub id; "
        "null = the world's knowledge.json",
    )
    first_step: int = Field(0, ge=0, description="step of the first injection")
    interval: int = Field(20, ge=1, description="steps between an item's injections")
    cohorts: int = Field(
        10, ge=1, description="each scenario's items in this many cohorts with staggered starts"
    )
    cohort_gap: int | None = Field(
        None, ge=0, description="steps between cohorts' starts; null = interval // cohorts"
    )
    scenario_offset: int = Field(
        1, ge=0, description="scenario k starts k × this many steps later (unless first_step)"
    )
    scenarios: list[ScenarioConfig] = Field(
        [
            ScenarioConfig(name="paraphrase", variant="paraphrase", count=5),
            ScenarioConfig(name="duplicate", variant="duplicate", count=5),
            ScenarioConfig(name="once", variant="duplicate", count=1),
        ],
        description="the injected items are split among these, in order (controls last)",
    )
    n_controls: int = Field(30, ge=0, description="items never injected, to measure drift")
    max_items: int | None = Field(None, ge=1, description="use only the first N items")
    schedule: list[ScheduleEntry] | None = Field(
        None, description="explicit injections, replacing scenarios; null = from scenarios"
    )
    placement: Literal["prepend", "replace"] = Field(
        "prepend",
        description="prepend: the text goes in front of a background sequence, which fills the "
        "rest of its row; replace: the row holds only injected text",
    )
    allow_truncation: bool = Field(
        False,
        description="cut an injected text that does not fit data.seq_len instead of refusing "
        "the config (a cut text may lose its fact)",
    )


class EvalConfig(_Section):
    """When the probes are scored: every step, or sparsely around each item's injections
    (fewer forward passes on a large model)."""

    schedule: Literal["every", "sparse"] = Field(
        "every",
        description="every: score every probe before the first update and after each; sparse: "
        "each item around its own injections (log_points, per_item)",
    )
    window: int = Field(
        10, ge=1, description="t_w: steps after each injection in which acquisition is measured"
    )
    log_points: int = Field(30, ge=1, description="sparse: log-spaced steps after the last window")
    per_item: bool = Field(
        True,
        description="sparse: score each item only at its own windows and tail (controls at "
        "every logged step); false = every item at every logged step",
    )
    batch_tokens: int = Field(
        1024,
        ge=64,
        description="tokens in one scoring forward pass: 1024 suits a CPU; on a GPU larger is "
        "faster while memory lasts (the GPU presets set 65536)",
    )
    full_text: bool = Field(
        False,
        description="also log the statistic 'full' (mean log probability of every token of "
        "a probe's text): the LM head and log-softmax at every position, about 13% more "
        "scoring time on the tiny model; off, that column of logprobs.npy is NaN",
    )


class TrainConfig(_Section):
    """The run's length, batch, checkpoints and live logging."""

    steps: int = Field(250, ge=1, description="optimizer updates of the run")
    batch_size: int = Field(
        4, ge=1, description="global batch in sequences (all processes together)"
    )
    micro_batch_size: int | None = Field(
        None,
        ge=1,
        description="sequences per forward/backward pass on each process (gradient "
        "accumulation); null = the process's whole share of the batch",
    )
    seed: int = Field(
        0,
        description="must be 0: training is deterministic given its data (for a replicate set "
        "data.seed); kept so that older configs load",
    )
    checkpoint_every: int = Field(
        50, ge=1, description="save a checkpoint every this many steps and at the end"
    )
    keep_checkpoints: int = Field(2, ge=1, description="newest checkpoints kept on disk")
    threads: int | None = Field(None, ge=1, description="torch CPU threads; null = torch default")
    trackers: list[Literal["tensorboard", "wandb"]] = Field(
        default_factory=list,
        description="live logging: tensorboard (RUN_DIR/tb), wandb (RUN_DIR/wandb); none = []",
    )

    @field_validator("seed")
    @classmethod
    def _seed_has_no_effect(cls, seed: int) -> int:
        # training is deterministic given its data: a seed here would make runs that are
        # bit-identical look like replicates (and pool as such)
        if seed != 0:
            raise ValueError(
                "has no effect: training is deterministic given its data; for a replicate "
                "with other training noise set data.seed (another order of the background text)"
            )
        return seed


# Fields that change what a run reports to, not what it measures: a resume may change them
# and runs that differ only in them pool.
SIDE_FIELDS = (("train", "trackers"),)


class RunConfig(_Section):
    """One run of continued pretraining: every section, each field with the default of the
    offline tiny run."""

    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    data: DataConfig = DataConfig()
    injection: InjectionConfig = InjectionConfig()
    eval: EvalConfig = EvalConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        mb = self.train.micro_batch_size
        if mb is not None and self.train.batch_size % mb:
            raise ValueError(
                f"train.batch_size ({self.train.batch_size}) must be a multiple of "
                f"train.micro_batch_size ({mb})"
            )
        names = [s.name for s in self.injection.scenarios]
        if len(set(names)) != len(names) or "control" in names:
            raise ValueError("injection.scenarios: names must be unique and not 'control'")
        return self
