"""Built-in checks of k8sreach, one module per check id."""
