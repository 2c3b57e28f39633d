"""R1's stages beyond GRPO, and the recipes that chain them.

- ``cold_start``: written chains of thought from a task's worked solutions (R1's cold-start data);
- ``sft_data`` and ``sft``: the SFT JSONL format and the SFT stage (TRL's SFTTrainer);
- ``rejection_sampling``: verified, readable samples from a policy, as SFT data;
- ``pipeline``: multi-stage recipes (SFT -> GRPO -> sample -> SFT -> GRPO, or R1-Zero);
- ``distill``: a teacher's samples into a student, against GRPO on the student.
"""
