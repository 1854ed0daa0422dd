"""PoundCake proper: Alertmanager intake, alert episodes, CABs and the request trail."""
