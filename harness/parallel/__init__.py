"""The papers' own parallel schemes: KSH12's two towers on two devices, OWT14's hybrid of data-parallel
convolutions and model-parallel fully connected layers. `checks` says where a scheme applies, `build` makes it."""
