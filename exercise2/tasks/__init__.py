"""The analyses of a trained beta-VAE, one module each: `run(ctx)` takes a FaceContext, writes its
figures and summary.json under <output_dir>/<ckpt_name>/<task>/, prints what it found and returns the
summary as a plain dict."""
