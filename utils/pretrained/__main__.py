from utils.pretrained import _cli

raise SystemExit(_cli())
