"""Example specs (YAML) and the import factories they name (e.g. `jobs.examples.hf_text:make_model`)."""
