"""cdlib: continuous delivery in the Ansible style."""
