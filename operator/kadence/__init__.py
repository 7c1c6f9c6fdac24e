"""kadence: flexible scheduling for Kubernetes, as Schedule and Task resources."""

GROUP = "kadence.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
