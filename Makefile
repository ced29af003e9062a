# Two commands on a fresh clone (Python 3.11 and make):  make demo  |  make test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test demo bench sweep lr-bracket pe-seeds train-text chapter variants train-vaes classifier analysis-stats report report-results reproduce clean-outputs

venv: $(STAMP)
$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto tests

# The main job: the shipped checkpoints at work, no data needed.
demo: $(STAMP)
	$(BIN)/python exercise1/lstm/test.py --ckpt_dir checkpoints --prompt "the knight rode into the wood and " --length 300
	$(BIN)/python exercise1/tcn/test.py --ckpt_dir checkpoints --prompt "the knight rode into the wood and " --length 300
	$(BIN)/python exercise1/transformer/test.py --ckpt_dir checkpoints --prompt "the knight rode into the wood and " --length 300
	$(BIN)/python exercise2/main.py --task random_generation --ckpt_name vae_beta_0 --ckpt_dir checkpoints
	$(BIN)/python exercise2/main.py --task random_generation --ckpt_name vae_beta_4 --ckpt_dir checkpoints
	$(BIN)/python exercise2/main.py --task latent_analysis --ckpt_name vae_beta_4 --ckpt_dir checkpoints
	$(BIN)/python exercise2/main.py --task latent_analysis --ckpt_name vae_beta_20 --ckpt_dir checkpoints
	$(BIN)/python exercise2/main.py --task rotate --ckpt_name vae_beta_4 --ckpt_dir checkpoints
	$(BIN)/python exercise2/main.py --task edit --attribute Smiling --ckpt_name vae_beta_4 --ckpt_dir checkpoints
	@echo "face analyses written under outputs/vae_beta_*/"

# Speed and short-budget quality on this machine (needs data/text.txt and data/CelebA, or pass paths).
TEXT ?= data/text.txt
DSET ?= data
bench: $(STAMP)
	$(BIN)/python scripts/bench.py --text $(TEXT) --dset_dir $(DSET)

# The report: analyses of the shipped checkpoints into report/results/ (needs the data), then the PDF.
RESULTS := report/results
report-results: $(STAMP)
	mkdir -p $(RESULTS)/text
	$(BIN)/python exercise1/data_preparation.py --text $(TEXT) --name text
	cp data/text/split.json $(RESULTS)/text/split.json
	$(BIN)/python exercise1/ngram.py --dataset text --json | tail -n 1 > $(RESULTS)/text/ngram_ladder_text.json
	for arch in lstm tcn transformer; do \
	  $(BIN)/python exercise1/$$arch/test.py --ckpt_dir checkpoints --dataset text --json --seed 1 --length 500 | tail -n 1 > $(RESULTS)/text/$$arch.json || exit 1; \
	  for t in 0.5 1.0; do \
	    $(BIN)/python exercise1/$$arch/test.py --ckpt_dir checkpoints --prompt "$(PROMPT)" --temperature $$t --length 300 --seed 1 --json \
	      | tail -n 1 > $(RESULTS)/text/$${arch}_T$$t.json || exit 1; \
	  done; \
	done
	for beta in 0 4 20; do \
	  for task in random_generation latent_analysis rotate; do \
	    $(BIN)/python exercise2/main.py --task $$task --ckpt_name vae_beta_$$beta --ckpt_dir checkpoints --dset_dir $(DSET) --output_dir $(RESULTS) \
	      --num_faces 2 --num_samples 36 || exit 1; \
	  done; \
	  for attr in Smiling Eyeglasses Blond_Hair; do \
	    $(BIN)/python exercise2/main.py --task edit --attribute $$attr --ckpt_name vae_beta_$$beta --ckpt_dir checkpoints --dset_dir $(DSET) \
	      --output_dir $(RESULTS) --num_faces 3 || exit 1; \
	  done; \
	done

# The statistics the face analyses need, kept beside each shipped VAE so they run without data
# (checkpoints/vae_beta_*/analysis.pt): computed from the faces by one task per VAE, then copied in.
analysis-stats: $(STAMP)
	for beta in 0 4 20; do \
	  rm -rf outputs/analysis-stats/cache; \
	  $(BIN)/python exercise2/main.py --task random_generation --ckpt_name vae_beta_$$beta --ckpt_dir checkpoints \
	    --dset_dir $(DSET) --cache_dir outputs/analysis-stats/cache --output_dir outputs/analysis-stats --num_samples 4 || exit 1; \
	  f=$$(ls outputs/analysis-stats/cache/analysis_vae_beta_$${beta}_*.pt 2>/dev/null | head -n 1); \
	  if [ -n "$$f" ]; then cp "$$f" checkpoints/vae_beta_$$beta/analysis.pt; else echo "vae_beta_$$beta: analysis.pt is current"; fi; \
	done

report: $(STAMP)
	$(BIN)/python report/build.py

# Experiments behind the report (2 CPU cores: sweep 66 min, text models 3 x 11 min, variants 5 x 11 min, VAEs 3 x 15 min).
SWEEP_MINUTES ?= 2
TEXT_MINUTES ?= 10
VAE_MINUTES ?= 15
PROMPT ?= the knight rode into the wood and
sweep: $(STAMP)
	$(BIN)/python exercise1/data_preparation.py --text $(TEXT) --name text
	$(BIN)/python scripts/sweep_text.py --minutes $(SWEEP_MINUTES)

# Each architecture's learning-rate optimum at equal steps, with seeds (the sweep's follow-up)
lr-bracket: $(STAMP)
	$(BIN)/python exercise1/data_preparation.py --text $(TEXT) --name text
	$(BIN)/python scripts/lr_bracket.py
# The positional-encoding comparison at equal steps with three seeds (reuses the bracket's learned-position runs)
pe-seeds: $(STAMP)
	$(BIN)/python exercise1/data_preparation.py --text $(TEXT) --name text
	$(BIN)/python scripts/pe_seeds.py
# Training targets write to runs/ (git-ignored); CKPT_DIR=checkpoints OVERWRITE=1 replaces the shipped models
# (without OVERWRITE a run refuses a folder that already holds one).
CKPT_DIR ?= runs
OVERWRITE ?=
# TEXT_EPOCHS=26 ARCHS=lstm: a fixed number of passes instead of the clock (the same steps on any host).
# THREADS=1 (an environment or make variable): CPU threads per run, default 2.
TEXT_EPOCHS ?=
train-text: $(STAMP)
	CKPT_DIR=$(CKPT_DIR) OVERWRITE=$(OVERWRITE) EPOCHS=$(TEXT_EPOCHS) bash scripts/train_text_models.sh $(TEXT) $(TEXT_MINUTES)
# The chapter-size check: each architecture's default run (size rule in effect) on a chapter-sized
# text, curves to outputs/results/text/chapter/ and the text's n-gram ladder (about 30 min here; the
# report's own runs are in report/results/text/chapter/ and stay as they are).
CHAPTER ?= data/chapter.txt
chapter: $(STAMP)
	bash scripts/chapter_runs.sh $(CHAPTER)
# Other runs of the final budget that the report compares with the models shipped before the retraining
# (not shipped), so at those models' recipes: their rates, no weight drop, no weight averaging, weight decay 0.01.
# ARCH:TAG:SETTINGS (comma-separated --set entries); learning curves to report/results/text/runs/ (11 min each).
LSTM_BEFORE := training.learning_rate=0.006,model.weight_drop=0.0
ONE_LAYER := $(LSTM_BEFORE),model.num_lstm_layers=1,model.d_lstm=512
RUNS ?= lstm:1x512_d0:$(ONE_LAYER),model.dropout=0.0 lstm:1x512_d0.3:$(ONE_LAYER),model.dropout=0.3 \
        lstm:1x512_d0.5:$(ONE_LAYER),model.dropout=0.5 lstm:2x512_d0.3:$(LSTM_BEFORE),model.d_lstm=512 \
        tcn:d0.1:training.learning_rate=0.004,training.ema_steps=0,training.weight_decay=0.01,model.dropout=0.1 \
        transformer:d256:training.learning_rate=0.002,training.ema_steps=0,model.d_model=256,model.linear_layer_size=1024
variants: $(STAMP)
	$(BIN)/python exercise1/data_preparation.py --text $(TEXT) --name text
	mkdir -p $(RESULTS)/text/runs
	for run in $(RUNS); do \
	  arch=$${run%%:*}; rest=$${run#*:}; tag=$${rest%%:*}; sets=$$(echo $${rest#*:} | tr , ' '); \
	  $(BIN)/python exercise1/$$arch/train.py --dataset text --name $$arch --ckpt_dir outputs/runs/$${arch}_$$tag \
	    --set $$sets --max_minutes $(TEXT_MINUTES) --patience 0 --threads 2 --overwrite || exit 1; \
	  $(BIN)/python exercise1/$$arch/test.py --ckpt_dir outputs/runs/$${arch}_$$tag --prompt "$(PROMPT)" --length 500 \
	    --seed 1 --json > outputs/runs/$${arch}_$$tag/test.json || exit 1; \
	  $(BIN)/python scripts/save_run_curve.py outputs/runs/$${arch}_$$tag/$$arch $(RESULTS)/text/runs/$${arch}_$$tag.json \
	    --test_json outputs/runs/$${arch}_$$tag/test.json --note "$$arch with $$sets, $(TEXT_MINUTES) min" || exit 1; \
	done
train-vaes: $(STAMP)
	CKPT_DIR=$(CKPT_DIR) OVERWRITE=$(OVERWRITE) bash scripts/train_vaes.sh $(DSET) $(VAE_MINUTES)
# The attribute classifier that measures the face analyses (trained on photos, blurred photos and the
# shipped VAEs' reconstructions of the training faces; about 7 min here).
classifier: $(STAMP)
	$(BIN)/python exercise2/classifier.py --dset_dir $(DSET) --threads 2 --ckpt_dir $(CKPT_DIR) $(if $(OVERWRITE),--overwrite)

# Everything end to end on a CPU: data, sweep, shipped models, analyses, PDF (about 3.7 h here).
# It regenerates what ships: the models go to checkpoints/, replacing the shipped ones (CKPT_DIR=checkpoints OVERWRITE=1).
reproduce: CKPT_DIR = checkpoints
reproduce: OVERWRITE = 1
reproduce: sweep train-text variants train-vaes classifier analysis-stats report-results report

clean-outputs:
	rm -rf outputs
