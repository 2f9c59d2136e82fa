"""Training one rank: TrainConfig (config), the UFLD-style model (model), row-anchor targets (targets),
losses, the cached data set (data), the communication hook (commhook), the loop (train), prediction."""
