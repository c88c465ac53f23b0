# densenet-interp: the paper's pipeline as a graph of file targets.
#
#   make reproduce            # default profile `mini` on the offline phantom MURA (< 30 min on 2 CPU cores)
#   make reproduce PROFILE=tiny
#   make reproduce PROFILE=paper MURA_DIR=/data/MURA-v1.1 GPU=1   # real MURA, DenseNet-169, ImageNet (CPU_OK=1: on the CPU)
#   make smoke                # the paper's code path end to end on a small phantom (PROFILE=paper-smoke)
#   make test                 # lint, unit tests, end-to-end test of the tiny pipeline
#   make mutants              # mutation testing of the recipe and measures (score >= 90 %)
#   make lab                  # JupyterLab at the project root, open on notebooks/
#   make app                  # the explorer as a web app (Voila) on 127.0.0.1
#   make tensorboard          # TensorBoard on the training logs (TB_PORT=6006)
#   make screenshots          # the app at a narrow and a wide window -> results/screenshots/ (Chromium)
#
# Every step is a file target, so nothing expensive reruns when its inputs did not change; notebooks are
# executed headlessly by papermill into results/<profile>/notebooks/.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.SUFFIXES:
MAKEFLAGS += --no-builtin-rules

PROFILE ?= mini
GPU ?= 0
ROOT := $(abspath .)
RESULTS_ROOT ?= $(ROOT)/results
DATA_ROOT ?= $(ROOT)/data
RESULTS := $(abspath $(RESULTS_ROOT))/$(PROFILE)
DATA := $(abspath $(DATA_ROOT))/$(PROFILE)
export DENSENET_INTERP_RESULTS := $(abspath $(RESULTS_ROOT))
export DENSENET_INTERP_DATA := $(abspath $(DATA_ROOT))
export PROFILE
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED := 0
# Fixed thread pools: the same bits on every machine (a sum split over other thread counts adds in another
# order). THREADS=0 lets TensorFlow use every core: faster on big machines, other bits. See models/runtime.py.
THREADS ?= 2
ifneq ($(THREADS),0)
export TF_NUM_INTRAOP_THREADS := $(THREADS)
export TF_NUM_INTEROP_THREADS := $(THREADS)
endif
export MPLBACKEND := Agg

# ---------------------------------------------------------------------------------------------- environment
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
TF_EXTRA := $(if $(filter 1,$(GPU)),gpu,cpu)
VENV_STAMP := $(VENV)/.installed-$(TF_EXTRA)
KERNEL := densenet-interp
CLI := $(VENV)/bin/densenet-interp
# papermill streams the cells' output (--log-output) into the step's log; `densenet-interp step` shows what matters
PAPERMILL := "$(PY)" -m papermill --kernel $(KERNEL) --log-level INFO --log-output --no-progress-bar
# The console: every step is one `[k/N] what ...` line, its training epochs, and `done in ...` (commands/step.py);
# everything else (papermill, TensorFlow's start-up notices, kernel warnings) goes to results/<profile>/logs/.
# VERBOSE=1 shows all of it.
VERBOSE ?= 0
LOGS = $(RESULTS)/logs
STEP = "$(CLI)" step $(if $(filter 1,$(VERBOSE)),--verbose) --label "$(2)" --log "$(1)" --

$(VENV_STAMP): pyproject.toml requirements.lock
	@echo "==> setting up $(VENV) (TensorFlow: $(TF_EXTRA); a few minutes the first time; pip's log: $(VENV)/pip.log)"
	@test -x "$(PY)" || "$(PYTHON)" -m venv "$(VENV)"
	@{ "$(PY)" -m pip install --disable-pip-version-check --progress-bar off --upgrade pip \
	  && "$(PY)" -m pip install --disable-pip-version-check --progress-bar off -c requirements.lock -e '.[$(TF_EXTRA),dev]'; \
	  } > "$(VENV)/pip.log" 2>&1 || { tail -n 30 "$(VENV)/pip.log" >&2; echo "pip failed; its whole output: $(VENV)/pip.log" >&2; exit 1; }
	@"$(PY)" -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (densenet-interp)" >/dev/null
	@rm -f "$(VENV)"/.installed-*
	@touch "$@"

.PHONY: venv
venv: $(VENV_STAMP)

# --------------------------------------------------------------------------------------------------- data
# Phantom profiles generate their dataset; `paper` reads real MURA from MURA_DIR.
PHANTOM := $(shell $(PYTHON) -c "import sys; sys.path.insert(0, 'lib'); from densenet_interp.profiles import get_profile; print(int(get_profile('$(PROFILE)').phantom))" 2>/dev/null || echo 1)
# paper-smoke: the real-MURA code path (PHANTOM=0) on a generated phantom, which Make passes as MURA_DIR
SMOKE := $(shell $(PYTHON) -c "import sys; sys.path.insert(0, 'lib'); from densenet_interp.profiles import get_profile; print(int(get_profile('$(PROFILE)').smoke))" 2>/dev/null || echo 0)
GENERATE := $(if $(filter 1,$(PHANTOM) $(SMOKE)),1,0)
ifeq ($(GENERATE),1)
MURA_DIR := $(DATA)/phantom/MURA-v1.1
DATA_STAMP := $(MURA_DIR)/.complete
STANDIN := $(if $(filter 1,$(PHANTOM)),$(RESULTS)/models/standin_pretrain/backbone.weights.h5)
else
MURA_DIR ?=
# The check is keyed by the folder: its real path and its index CSVs' sizes and times. Another MURA_DIR, or an
# edited index, is another stamp, so the check is redone (and what depends on the data is rebuilt).
MURA_KEY := $(shell { realpath -- "$(MURA_DIR)"; stat -L -c '%n %s %Y' -- "$(MURA_DIR)"/*.csv "$(MURA_DIR)"/MURA-v1.1/*.csv; } 2>/dev/null | sha256sum | cut -c1-16)
DATA_STAMP := $(DATA)/.mura-checked-$(MURA_KEY)
STANDIN :=
endif

$(DATA)/phantom/MURA-v1.1/.complete: | $(VENV_STAMP)
	@rm -rf "$(DATA)/phantom/MURA-v1.1"
	@$(call STEP,$(LOGS)/phantom.log,$(call STEP_NO,phantom) generate the phantom MURA) "$(CLI)" phantom "$(DATA)/phantom" \
	  --seed 0 --scale $$("$(CLI)" profile $(PROFILE) phantom_scale) \
	  --long-side $$("$(CLI)" profile $(PROFILE) phantom_long_side)
	@touch "$@"

# Reads the index CSVs, checks that every listed image exists (a count of the missing ones) and decodes a
# sample of MURA_SAMPLE of them; any problem stops the run here, before a GPU-hour is spent.
MURA_SAMPLE ?= 200
$(DATA)/.mura-checked-%: | $(VENV_STAMP)
	@test -n "$(MURA_DIR)" || { echo "PROFILE=$(PROFILE) needs real MURA: make reproduce PROFILE=$(PROFILE) MURA_DIR=/path/to/MURA-v1.1" >&2; exit 2; }
	@echo "checking the MURA folder $(MURA_DIR) ($(MURA_SAMPLE) images decoded) ..."
	@"$(CLI)" stats "$(MURA_DIR)" --sample $(MURA_SAMPLE) | tail -n 1
	@mkdir -p "$(@D)" && touch "$@"

# ------------------------------------------------------------------------------------------------- the code
# Make knows the code: every table and figure target lists the library modules its notebook runs (its imports,
# transitively, lazy ones included), so editing a module re-renders exactly what it affects. The lists are
# checked against the imports by tests/test_architecture.py; `make print-CODE_30` shows one. Trainings, the
# stand-in pre-training and the phantom data are ORDER-ONLY on code (after `|`): a refactor never retrains and
# never regenerates data; delete results/<profile>/models/<set>/ to retrain one model set on purpose.
PKG := lib/densenet_interp
CODE_00 := \
  $(PKG)/__init__.py $(PKG)/data/__init__.py $(PKG)/data/dicom.py \
  $(PKG)/data/exploration.py $(PKG)/data/frames.py $(PKG)/data/images.py \
  $(PKG)/data/metal.py $(PKG)/data/mura.py $(PKG)/errors.py \
  $(PKG)/evaluate/__init__.py $(PKG)/evaluate/detectors.py $(PKG)/evaluate/plots.py \
  $(PKG)/models/__init__.py $(PKG)/models/inference.py $(PKG)/paths.py \
  $(PKG)/phantom/__init__.py $(PKG)/phantom/anatomy.py $(PKG)/phantom/arm.py \
  $(PKG)/phantom/bones.py $(PKG)/phantom/cases.py $(PKG)/phantom/confounders.py \
  $(PKG)/phantom/dataset.py $(PKG)/phantom/hand.py $(PKG)/phantom/hardware.py \
  $(PKG)/phantom/knobs.py $(PKG)/phantom/lesions.py $(PKG)/phantom/masks.py \
  $(PKG)/phantom/plan.py $(PKG)/phantom/radiograph.py $(PKG)/phantom/render.py \
  $(PKG)/phantom/solids.py $(PKG)/phantom/views.py $(PKG)/profiles.py \
  $(PKG)/progress.py

CODE_30 := \
  $(PKG)/__init__.py $(PKG)/data/__init__.py $(PKG)/data/augment.py \
  $(PKG)/data/dicom.py $(PKG)/data/images.py $(PKG)/data/mura.py \
  $(PKG)/data/pipeline.py $(PKG)/errors.py $(PKG)/evaluate/__init__.py \
  $(PKG)/evaluate/metrics.py $(PKG)/evaluate/plots.py $(PKG)/evaluate/stats.py \
  $(PKG)/models/__init__.py $(PKG)/models/densenet.py $(PKG)/models/inference.py \
  $(PKG)/models/weights.py $(PKG)/paths.py $(PKG)/phantom/__init__.py \
  $(PKG)/phantom/anatomy.py $(PKG)/phantom/arm.py $(PKG)/phantom/bones.py \
  $(PKG)/phantom/cases.py $(PKG)/phantom/confounders.py $(PKG)/phantom/dataset.py \
  $(PKG)/phantom/hand.py $(PKG)/phantom/hardware.py $(PKG)/phantom/knobs.py \
  $(PKG)/phantom/lesions.py $(PKG)/phantom/masks.py $(PKG)/phantom/plan.py \
  $(PKG)/phantom/radiograph.py $(PKG)/phantom/render.py $(PKG)/phantom/solids.py \
  $(PKG)/phantom/views.py $(PKG)/profiles.py $(PKG)/progress.py

CODE_40 := \
  $(PKG)/__init__.py $(PKG)/data/__init__.py $(PKG)/data/augment.py \
  $(PKG)/data/dicom.py $(PKG)/data/frames.py $(PKG)/data/images.py \
  $(PKG)/data/metal.py $(PKG)/data/mura.py $(PKG)/errors.py \
  $(PKG)/evaluate/__init__.py $(PKG)/evaluate/case_report.py $(PKG)/evaluate/measures.py \
  $(PKG)/explain/__init__.py $(PKG)/explain/cases.py $(PKG)/explain/engine.py \
  $(PKG)/explain/figures.py $(PKG)/explain/maps.py $(PKG)/models/__init__.py \
  $(PKG)/models/densenet.py $(PKG)/models/inference.py $(PKG)/models/weights.py \
  $(PKG)/paths.py $(PKG)/phantom/__init__.py $(PKG)/phantom/anatomy.py \
  $(PKG)/phantom/arm.py $(PKG)/phantom/bones.py $(PKG)/phantom/cases.py \
  $(PKG)/phantom/confounders.py $(PKG)/phantom/dataset.py $(PKG)/phantom/hand.py \
  $(PKG)/phantom/hardware.py $(PKG)/phantom/knobs.py $(PKG)/phantom/lesions.py \
  $(PKG)/phantom/masks.py $(PKG)/phantom/plan.py $(PKG)/phantom/radiograph.py \
  $(PKG)/phantom/render.py $(PKG)/phantom/solids.py $(PKG)/phantom/views.py \
  $(PKG)/profiles.py $(PKG)/progress.py

CODE_50 := \
  $(PKG)/__init__.py $(PKG)/data/__init__.py $(PKG)/data/augment.py \
  $(PKG)/data/dicom.py $(PKG)/data/frames.py $(PKG)/data/images.py \
  $(PKG)/data/mura.py $(PKG)/data/pipeline.py $(PKG)/errors.py \
  $(PKG)/evaluate/__init__.py $(PKG)/evaluate/claims.py $(PKG)/evaluate/faithfulness.py \
  $(PKG)/evaluate/localisation.py $(PKG)/evaluate/measures.py $(PKG)/evaluate/plots.py \
  $(PKG)/evaluate/stats.py $(PKG)/explain/__init__.py $(PKG)/explain/engine.py \
  $(PKG)/explain/maps.py $(PKG)/explain/methods.py $(PKG)/models/__init__.py \
  $(PKG)/models/densenet.py $(PKG)/models/inference.py $(PKG)/models/weights.py \
  $(PKG)/paths.py $(PKG)/phantom/__init__.py $(PKG)/phantom/anatomy.py \
  $(PKG)/phantom/arm.py $(PKG)/phantom/bones.py $(PKG)/phantom/cases.py \
  $(PKG)/phantom/confounders.py $(PKG)/phantom/dataset.py $(PKG)/phantom/hand.py \
  $(PKG)/phantom/hardware.py $(PKG)/phantom/knobs.py $(PKG)/phantom/lesions.py \
  $(PKG)/phantom/masks.py $(PKG)/phantom/plan.py $(PKG)/phantom/radiograph.py \
  $(PKG)/phantom/render.py $(PKG)/phantom/solids.py $(PKG)/phantom/views.py \
  $(PKG)/profiles.py $(PKG)/progress.py

CODE_90 := \
  $(PKG)/__init__.py $(PKG)/app/__init__.py $(PKG)/app/serve.py \
  $(PKG)/app/widgets.py $(PKG)/data/__init__.py $(PKG)/data/augment.py \
  $(PKG)/data/dicom.py $(PKG)/data/frames.py $(PKG)/data/images.py \
  $(PKG)/data/metal.py $(PKG)/data/mura.py $(PKG)/errors.py \
  $(PKG)/explain/__init__.py $(PKG)/explain/cases.py $(PKG)/explain/engine.py \
  $(PKG)/explain/figures.py $(PKG)/explain/maps.py $(PKG)/explain/methods.py \
  $(PKG)/models/__init__.py $(PKG)/models/densenet.py $(PKG)/models/inference.py \
  $(PKG)/models/weights.py $(PKG)/paths.py $(PKG)/phantom/__init__.py \
  $(PKG)/phantom/anatomy.py $(PKG)/phantom/arm.py $(PKG)/phantom/bones.py \
  $(PKG)/phantom/cases.py $(PKG)/phantom/confounders.py $(PKG)/phantom/dataset.py \
  $(PKG)/phantom/hand.py $(PKG)/phantom/hardware.py $(PKG)/phantom/knobs.py \
  $(PKG)/phantom/lesions.py $(PKG)/phantom/masks.py $(PKG)/phantom/plan.py \
  $(PKG)/phantom/radiograph.py $(PKG)/phantom/render.py $(PKG)/phantom/solids.py \
  $(PKG)/phantom/views.py $(PKG)/profiles.py $(PKG)/progress.py

CODE_SHORTCUT := \
  $(PKG)/__init__.py $(PKG)/commands/__init__.py $(PKG)/commands/shortcut.py \
  $(PKG)/data/__init__.py $(PKG)/data/augment.py $(PKG)/data/dicom.py \
  $(PKG)/data/frames.py $(PKG)/data/images.py $(PKG)/data/mura.py \
  $(PKG)/data/pipeline.py $(PKG)/errors.py $(PKG)/evaluate/__init__.py \
  $(PKG)/evaluate/claims.py $(PKG)/evaluate/localisation.py $(PKG)/evaluate/measures.py \
  $(PKG)/evaluate/metrics.py $(PKG)/evaluate/plots.py $(PKG)/evaluate/stats.py \
  $(PKG)/experiments/__init__.py $(PKG)/experiments/shortcut.py $(PKG)/explain/__init__.py \
  $(PKG)/explain/engine.py $(PKG)/explain/maps.py $(PKG)/models/__init__.py \
  $(PKG)/models/densenet.py $(PKG)/models/inference.py $(PKG)/models/runtime.py \
  $(PKG)/models/schedule.py $(PKG)/models/training.py $(PKG)/models/weights.py \
  $(PKG)/paths.py $(PKG)/phantom/__init__.py $(PKG)/phantom/anatomy.py \
  $(PKG)/phantom/arm.py $(PKG)/phantom/bones.py $(PKG)/phantom/cases.py \
  $(PKG)/phantom/confounders.py $(PKG)/phantom/dataset.py $(PKG)/phantom/hand.py \
  $(PKG)/phantom/hardware.py $(PKG)/phantom/knobs.py $(PKG)/phantom/lesions.py \
  $(PKG)/phantom/masks.py $(PKG)/phantom/plan.py $(PKG)/phantom/radiograph.py \
  $(PKG)/phantom/render.py $(PKG)/phantom/solids.py $(PKG)/phantom/views.py \
  $(PKG)/profiles.py $(PKG)/progress.py

CODE_SEEDS := \
  $(PKG)/__init__.py $(PKG)/commands/__init__.py $(PKG)/commands/seeds.py \
  $(PKG)/data/__init__.py $(PKG)/data/augment.py $(PKG)/data/dicom.py \
  $(PKG)/data/frames.py $(PKG)/data/images.py $(PKG)/data/mura.py \
  $(PKG)/data/pipeline.py $(PKG)/errors.py $(PKG)/evaluate/__init__.py \
  $(PKG)/evaluate/claims.py $(PKG)/evaluate/localisation.py $(PKG)/evaluate/measures.py \
  $(PKG)/evaluate/metrics.py $(PKG)/evaluate/plots.py $(PKG)/evaluate/seeds.py \
  $(PKG)/evaluate/stats.py $(PKG)/experiments/__init__.py $(PKG)/experiments/seeds.py \
  $(PKG)/experiments/shortcut.py $(PKG)/explain/__init__.py $(PKG)/explain/engine.py \
  $(PKG)/explain/maps.py $(PKG)/models/__init__.py $(PKG)/models/densenet.py \
  $(PKG)/models/inference.py $(PKG)/models/runtime.py $(PKG)/models/schedule.py \
  $(PKG)/models/training.py $(PKG)/models/weights.py $(PKG)/paths.py \
  $(PKG)/phantom/__init__.py $(PKG)/phantom/anatomy.py $(PKG)/phantom/arm.py \
  $(PKG)/phantom/bones.py $(PKG)/phantom/cases.py $(PKG)/phantom/confounders.py \
  $(PKG)/phantom/dataset.py $(PKG)/phantom/hand.py $(PKG)/phantom/hardware.py \
  $(PKG)/phantom/knobs.py $(PKG)/phantom/lesions.py $(PKG)/phantom/masks.py \
  $(PKG)/phantom/plan.py $(PKG)/phantom/radiograph.py $(PKG)/phantom/render.py \
  $(PKG)/phantom/solids.py $(PKG)/phantom/views.py $(PKG)/profiles.py \
  $(PKG)/progress.py

print-%:
	@echo $($*)

# ---------------------------------------------------------------------------------------------- notebooks
NB := $(ROOT)/notebooks
OUTNB := $(RESULTS)/notebooks
# $(1) notebook, $(2) executed copy, $(3) step name (numbered by STEP_NO), $(4) what it does
RUN_NB = mkdir -p "$(OUTNB)" && $(call STEP,$(LOGS)/$(notdir $(basename $(2))).log,$(call STEP_NO,$(3)) $(4)) \
  $(PAPERMILL) "$(1)" "$(2)" -p profile $(PROFILE) -p results_dir "$(RESULTS)" -p data_dir "$(DATA)" -p mura_dir "$(MURA_DIR)"

# 00: data exploration -> Table 2, Figure 1, distribution plots
TABLE2 := $(RESULTS)/tables/table2_distribution.csv
$(TABLE2): $(NB)/00_data_exploration.ipynb $(CODE_00) $(DATA_STAMP) | $(VENV_STAMP)
	@$(call RUN_NB,$<,$(OUTNB)/00_data_exploration.ipynb,table2,Table 2 and Figure 1 (notebook 00))

# 10: stand-in pre-training (offline replacement for ImageNet weights)
$(RESULTS)/models/standin_pretrain/backbone.weights.h5: | $(VENV_STAMP)
	@$(call RUN_NB,$(NB)/10_standin_pretraining.ipynb,$(OUTNB)/10_standin_pretraining.ipynb,standin,stand-in pre-training (notebook 10))

# 20: the four trainings: one parameterised notebook, executed once per model set. The notebook and the code
# are order-only inputs: editing them re-renders nothing and never retrains a finished model.
MODEL_SETS := all_pretrained wrist_pretrained wrist_random finger_pretrained
PRETRAINED_SETS := all_pretrained wrist_pretrained finger_pretrained
MODELS := $(foreach s,$(MODEL_SETS),$(RESULTS)/models/$(s)/model.keras)
$(foreach s,$(PRETRAINED_SETS),$(RESULTS)/models/$(s)/model.keras): $(STANDIN)
# Real MURA without GPU=1: measure this machine, estimate the trainings' time, and stop unless CPU_OK=1 says to
# train on the CPU anyway (DenseNet-169 at 320 px takes days on a few cores; `densenet-interp estimate`).
CPU_OK ?= 0
CPU_GUARD := $(if $(and $(filter 0,$(GENERATE)),$(filter-out 1,$(GPU)),$(filter-out 1,$(CPU_OK))),cpu-guard)
.PHONY: cpu-guard
cpu-guard: $(DATA_STAMP) | $(VENV_STAMP)
	@echo "PROFILE=$(PROFILE) without GPU=1 trains on the CPU; measuring this machine first ..." >&2
	@"$(CLI)" -q estimate --profile $(PROFILE) --mura-dir "$(MURA_DIR)" >&2
	@echo "Stopped before training: run with GPU=1 on a machine with a GPU, or CPU_OK=1 to train on this CPU anyway." >&2
	@exit 2

$(RESULTS)/models/%/model.keras: $(DATA_STAMP) | $(VENV_STAMP) $(NB)/20_training.ipynb $(CPU_GUARD)
	@$(call RUN_NB,$(NB)/20_training.ipynb,$(OUTNB)/20_training_$*.ipynb,$*,train $* (notebook 20)) -p model_set $*

# Before evaluation every model file is loaded once (`train all --verify`; one process): a truncated or corrupt
# model.keras is named in one line and rebuilt from its run's checkpoints (no epoch is trained again). Redone
# whenever a model file changes.
VERIFIED := $(RESULTS)/models/.verified
$(VERIFIED): $(MODELS) | $(VENV_STAMP)
	@"$(CLI)" step $(if $(filter 1,$(VERBOSE)),--verbose) --label "$(call STEP_NO,models) check the model files" \
	  --log "$(LOGS)/check_models.log" --show '^(\S+: .*; rebuilding it from|epoch \d+/\d+ )' -- \
	  "$(CLI)" train all --verify --profile $(PROFILE) --mura-dir "$(MURA_DIR)"
	@touch "$@"

# 30: evaluation -> Table 1 (paper layout) and the extended table, predictions, ROC and confusion matrices
TABLE1 := $(RESULTS)/tables/table1.csv
$(TABLE1): $(NB)/30_evaluation.ipynb $(CODE_30) $(VERIFIED) | $(VENV_STAMP)
	@$(call RUN_NB,$<,$(OUTNB)/30_evaluation.ipynb,table1,Table 1 and predictions (notebook 30))

# 40: one case figure per paper figure (4-11): one parameterised notebook, executed once per figure
FIGURE_NUMBERS := 04 05 06 07 08 09 10 11
FIGURES := $(foreach n,$(FIGURE_NUMBERS),$(RESULTS)/figures/figure$(n).png)

# [k/N]: the position of a step among the steps of `make reproduce` (steps already up to date are skipped)
REPRODUCE_STEPS := $(if $(filter 1,$(GENERATE)),phantom) table2 $(if $(filter 1,$(PHANTOM)),standin) $(MODEL_SETS) models table1 \
  $(addprefix figure,$(FIGURE_NUMBERS)) $(if $(filter 1,$(PHANTOM)),localisation) explorer
$(foreach i,$(shell seq 1 $(words $(REPRODUCE_STEPS))),$(eval STEP_NUMBER_$(word $(i),$(REPRODUCE_STEPS)) := $(i)))
STEP_NO = [$(STEP_NUMBER_$(1))/$(words $(REPRODUCE_STEPS))]
# On real MURA a figure shows the image you pin (FIGURE5_IMAGE=MURA-v1.1/valid/.../image1.png, relative to the
# folder that contains MURA-v1.1, or absolute; FIGURE5 also sets 7 and 8, FIGURE10 also 11), else the one its
# written rule chooses from the validation predictions (so the figures follow Table 1's notebook) and the image
# evidence. The pins live in a file that changes only when they do, so a new pin redraws the figures.
ifeq ($(PHANTOM),0)
FIGURE_PINS := $(strip $(foreach n,4 5 6 7 8 9 10 11,$(if $(FIGURE$(n)_IMAGE),$(n)=$(FIGURE$(n)_IMAGE);)))
PINS := $(RESULTS)/figures/.pins
$(shell mkdir -p "$(RESULTS)/figures" && { printf '%s\n' '$(FIGURE_PINS)' | cmp -s - "$(PINS)" || printf '%s\n' '$(FIGURE_PINS)' > "$(PINS)"; })
FIGURE_INPUTS := $(TABLE1) $(PINS)
endif
$(RESULTS)/figures/figure%.png: $(NB)/40_case_figure.ipynb $(CODE_40) $(PKG)/explain/cases.json $(VERIFIED) $(FIGURE_INPUTS) | $(VENV_STAMP)
	@$(call RUN_NB,$<,$(OUTNB)/40_case_figure_$*.ipynb,figure$*,Figure $* (notebook 40)) -p figure $* -p pins '$(FIGURE_PINS)'

# 50: beyond the paper: where the models look (CAM mass in the ground-truth masks of the phantom), the paper's
# claims tested on those numbers, Grad-CAM/Grad-CAM++ and deletion/insertion curves. Needs phantom masks.
LOCALISATION := $(RESULTS)/tables/localisation.csv
$(LOCALISATION): $(NB)/50_localisation.ipynb $(CODE_50) $(VERIFIED) | $(VENV_STAMP)
	@$(call RUN_NB,$<,$(OUTNB)/50_localisation.ipynb,localisation,localisation and the claims (notebook 50))

# Shortcut experiment (beyond the paper, its own target: `make shortcut`): wrist_pretrained trained twice on
# phantom variants that differ only in how strongly the text legend correlates with the label.
SHORTCUT := $(RESULTS)/tables/shortcut.csv
$(SHORTCUT): $(CODE_SHORTCUT) $(STANDIN) | $(VENV_STAMP)
	@$(call STEP,$(LOGS)/shortcut.log,[shortcut] the shortcut experiment) \
	  "$(CLI)" shortcut --profile $(PROFILE) --results-dir "$(RESULTS)" --data-dir "$(DATA)"

# 90: the explorer runs headlessly too (its widgets are tested in tests/test_widgets.py)
EXPLORER := $(OUTNB)/90_explorer.ipynb
$(EXPLORER): $(NB)/90_explorer.ipynb $(CODE_90) $(VERIFIED) | $(VENV_STAMP)
	@$(call RUN_NB,$<,$@,explorer,the explorer (notebook 90)) -p require_models True

# ------------------------------------------------------------------------------------------------ seeds
# `make seeds SEEDS=5`: the training-seed noise. Seed 0 is the main run (results/<profile>/); seeds 1..SEEDS-1
# train every model set again (and, on phantom profiles, the shortcut experiment) into
# results/<profile>/seeds/seed<k>/, with the same data and stand-in pre-training: only the training seed
# (initial weights of random layers, data order, augmentation) changes. Every (seed, model set) is its own file
# target, so `make -j` splits them; a run folder is locked while it trains (paths.exclusive), so workers on
# several machines sharing results/ never train the same one (the second waits and reuses it). Then one command
# pools them: tables/table1_seeds.{csv,md} (mean, sd, range over seeds beside the main run's patient interval
# and the paper) and tables/claims_seeds.{csv,md} (every Table 1 comparison, claim and the shortcut flag per
# seed and pooled over seeds and patients). Like the trainings, seed runs are order-only on code.
SEEDS ?= 5
SEED_IDS := $(shell seq 1 $$(( $(SEEDS) - 1 )) 2>/dev/null)
SEED_DIR = $(RESULTS)/seeds/seed$(1)
SEED_MODELS = $(foreach s,$(MODEL_SETS),$(call SEED_DIR,$(1))/models/$(s)/model.keras)
SEEDS_TABLE := $(RESULTS)/tables/table1_seeds.csv
SEED_EVALS := $(foreach k,$(SEED_IDS),$(call SEED_DIR,$(k))/evaluation.json)
SEED_SHORTCUTS := $(if $(filter 1,$(PHANTOM)),$(foreach k,$(SEED_IDS),$(call SEED_DIR,$(k))/tables/shortcut.csv))
SEEDS_COUNT := $(RESULTS)/seeds/.count
ifneq ($(filter seeds,$(MAKECMDGOALS)),)
# a file that changes only when SEEDS does, so that the pooled tables follow SEEDS=3 -> SEEDS=5 -> SEEDS=3
$(shell mkdir -p $(RESULTS)/seeds && { echo $(SEEDS) | cmp -s - $(SEEDS_COUNT) || echo $(SEEDS) > $(SEEDS_COUNT); })
endif

define SEED_RULES
$(call SEED_DIR,$(1))/models/%/model.keras: $(DATA_STAMP) $(STANDIN) | $(VENV_STAMP)
	@$(call STEP,$(call SEED_DIR,$(1))/logs/train_$$*.log,[seed $(1)/$(SEEDS)] train $$*) \
	  "$(CLI)" train $$* --profile $(PROFILE) --seed $(1) --mura-dir "$(MURA_DIR)" --out "$$(@D)"

$(call SEED_DIR,$(1))/evaluation.json: $(call SEED_MODELS,$(1)) $(CODE_SEEDS) | $(VENV_STAMP)
	@$(call STEP,$(call SEED_DIR,$(1))/logs/evaluate.log,[seed $(1)/$(SEEDS)] evaluate) \
	  "$(CLI)" seeds evaluate --profile $(PROFILE) --seed $(1) --mura-dir "$(MURA_DIR)" --results-dir "$(RESULTS)" \
	  --data-dir "$(DATA)"

$(call SEED_DIR,$(1))/tables/shortcut.csv: $(CODE_SHORTCUT) $(STANDIN) | $(VENV_STAMP)
	@$(call STEP,$(call SEED_DIR,$(1))/logs/shortcut.log,[seed $(1)/$(SEEDS)] the shortcut experiment) \
	  "$(CLI)" shortcut --profile $(PROFILE) --results-dir "$(call SEED_DIR,$(1))" --data-dir "$(DATA)" --seed $(1) \
	  --standin-weights "$(STANDIN)"
endef
$(foreach k,$(SEED_IDS),$(eval $(call SEED_RULES,$(k))))

$(SEEDS_TABLE): $(SEEDS_COUNT) $(TABLE1) $(if $(filter 1,$(PHANTOM)),$(LOCALISATION) $(SHORTCUT)) $(SEED_EVALS) \
  $(SEED_SHORTCUTS) $(CODE_SEEDS) | $(VENV_STAMP)
	@$(call STEP,$(LOGS)/seeds.log,[seeds] pool $(SEEDS) seeds) \
	  "$(CLI)" seeds summarise --profile $(PROFILE) --seeds $(SEEDS) --results-dir "$(RESULTS)"

# ------------------------------------------------------------------------------------------ reproducibility
# `make verify-results`: run the whole profile again from nothing (phantom, stand-in, trainings, tables, and the
# shortcut experiment on phantom profiles) in a scratch folder, then compare its tables with the ones in
# results/<profile>/ byte for byte (all but the seeds tables of `make seeds`, which it does not rerun); every file that
# differs is named with its first differing line, and the exit status is 1 if any does. The scratch folder is
# wiped first (a stale model would be reused, since models are order-only on code).
VERIFY_ROOT ?= $(ROOT)/.verify
verify-results: | $(VENV_STAMP)
	rm -rf "$(VERIFY_ROOT)"
	$(MAKE) --no-print-directory reproduce $(if $(filter 1,$(PHANTOM)),shortcut) PROFILE=$(PROFILE) \
	  RESULTS_ROOT="$(VERIFY_ROOT)/results" DATA_ROOT="$(VERIFY_ROOT)/data"
	"$(CLI)" compare "$(RESULTS)" "$(VERIFY_ROOT)/results/$(PROFILE)" --files 'tables/*.csv' 'predictions/*.csv' \
	  --exclude 'tables/*_seeds.csv'

# ------------------------------------------------------------------------------------------------ targets
.PHONY: reproduce seeds shortcut data models tables figures test lint format lab app chromium clean-results help \
  verify-results mutants smoke tensorboard screenshots
# No recipe of its own, so `make -q reproduce` answers whether everything is up to date.
reproduce: $(TABLE2) $(TABLE1) $(FIGURES) $(if $(filter 1,$(PHANTOM)),$(LOCALISATION)) $(EXPLORER)

seeds: $(SEEDS_TABLE)

shortcut: $(SHORTCUT)
data: $(DATA_STAMP)
models: $(VERIFIED)
tables: $(TABLE2) $(TABLE1)
figures: $(FIGURES)

# The test that PROFILE=paper works: its whole graph and code path on a small generated phantom (about 15 min on
# 2 CPU cores; too long for `make test`, so a target of its own).
smoke:
	@$(MAKE) --no-print-directory reproduce PROFILE=paper-smoke

lint: $(VENV_STAMP)
	"$(VENV)/bin/ruff" check lib tests benchmarks notebooks
	"$(VENV)/bin/ruff" format --check lib tests benchmarks notebooks

format: $(VENV_STAMP)
	"$(VENV)/bin/ruff" format lib tests benchmarks notebooks
	"$(VENV)/bin/ruff" check --fix lib tests benchmarks notebooks

# The browser test drives Debian's Chromium through Playwright (never Playwright's own browser download).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	  || echo "WARNING: could not install Chromium (needs root and apt); tests/test_browser.py will fail" >&2

test: $(VENV_STAMP) chromium
	$(MAKE) --no-print-directory lint
	"$(PY)" -m pytest -q

# Mutation testing of the recipe and measures (tests/mutation.py; equivalent survivors in tests/MUTANTS.md).
# Fails below a 90 % score. About 30 min on 2 cores the first time; later runs redo only changed functions.
mutants: $(VENV_STAMP)
	"$(PY)" tests/mutation.py --max-children $(or $(JOBS),2)

# `make app`: notebooks/90_explorer.ipynb as a Voila web app (code hidden) on 127.0.0.1 (port 8866 if free,
# or APP_PORT=...), showing the models `make reproduce` trained in results/<profile>/ (nothing is trained here).
APP_PORT ?=
app: $(VENV_STAMP)
	DENSENET_INTERP_PROFILE='$(PROFILE)' DENSENET_INTERP_MURA_DIR='$(MURA_DIR)' "$(CLI)" app voila $(if $(APP_PORT),--port $(APP_PORT))

# `make screenshots`: the explorer app of PROFILE (the models make reproduce trained) in Chromium at a phone's
# width and a wide window -> results/screenshots/explorer_{narrow,wide}.png, the README's pictures.
screenshots: $(EXPLORER) | $(VENV_STAMP) chromium
	"$(PY)" tests/screenshots.py --profile $(PROFILE)

# TensorBoard on the training logs of PROFILE (each model set's models/<set>/tensorboard/), on 127.0.0.1
tensorboard: $(VENV_STAMP)
	"$(VENV)/bin/tensorboard" --logdir "$(RESULTS)/models" --host 127.0.0.1 --port $(or $(TB_PORT),6006)

lab: $(VENV_STAMP)
	"$(CLI)" app lab $(if $(APP_PORT),--port $(APP_PORT))

clean-results:
	rm -rf "$(RESULTS)"

help:
	@sed -n '2,15p' Makefile
