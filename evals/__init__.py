"""Faithfulness evaluation of SMDL result folders and saliency maps."""
