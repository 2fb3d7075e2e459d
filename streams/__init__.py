"""streamlearn: River models learning online from Kafka, served over HTTP."""
