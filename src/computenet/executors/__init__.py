"""Executors run placed jobs: interface in ``base``, ``local`` runs processes here."""
