"""mmjax: multi-modal scientific machine learning in JAX/Flax."""
