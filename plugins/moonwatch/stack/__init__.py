"""The local stack launcher: PostgreSQL, the Kafka-protocol broker, Airflow 3, the simulator
and the dashboard as background processes under ``$MOONWATCH_HOME`` (default ``.moonwatch/``)."""
