"""Public-style PyTorch programs run unchanged through `manygrad run`, compared with PyTorch.

Each script in scripts/ is a plain PyTorch program. It runs twice through ``_sync.py``
(same initial weights and random draws in both frameworks, see there): once with the real
PyTorch, once as ``manygrad run``. The losses it prints must agree within tolerance.
A script may name PyTorch APIs whose manygrad family has not landed yet: while manygrad
reports exactly such a name as unsupported, the test skips and says which.
"""

import json
import os
import re
import select
import signal
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", "..", "src"))
TIMEOUT = 300
LOSS = re.compile(r"[Ll]oss\w*:?\s+(-?[\d.]+(?:e[-+]?\d+)?)")

# script, arguments, (rtol, atol) on the printed losses, PyTorch names it may wait for
PORTS = [
    ("linear_regression.py", [], (1e-3, 1e-4), ()),
    ("mnist_cnn.py", [], (2e-3, 1e-4), ()),
    ("vae.py", [], (2e-3, 1e-3), ()),
    ("dcgan.py", [], (5e-3, 1e-3), ()),
    ("mingpt.py", [], (2e-3, 1e-3), ()),
    ("word_embeddings.py", [], (1e-3, 1e-3), ()),
    ("reinforce.py", [], (5e-3, 1e-3), ()),
    ("gcn.py", [], (2e-3, 1e-4), ()),
    ("char_rnn.py", [], (2e-3, 1e-4), ("torch.nn.LSTM",)),
    ("super_resolution.py", [], (2e-3, 1e-4), ("torch.nn.PixelShuffle", "torch.nn.init.orthogonal_")),
    ("seq2seq_gru.py", [], (2e-3, 1e-4), ("torch.nn.GRU",)),
    ("transformer_classifier.py", [], (2e-3, 1e-4), ()),
    ("mlp_checkpoint.py", [], (2e-3, 1e-4), ("torch.Generator",)),
    ("conv_autoencoder.py", [], (2e-3, 1e-5), ()),
    ("timeseries_conv1d.py", [], (2e-3, 1e-5), ()),
    ("actor_critic.py", [], (5e-3, 1e-3), ()),
    ("time_sequence_prediction.py", [], (2e-3, 1e-6), ("torch.nn.LSTMCell", "torch.optim.LBFGS")),
    ("gat.py", [], (2e-3, 1e-5), ()),
    ("dqn.py", [], (5e-3, 1e-5), ()),
    ("polynomial_custom_function.py", [], (1e-3, 1e-3), ()),
    ("mnist_from_scratch.py", [], (1e-3, 1e-5), ()),
    ("fgsm.py", [], (2e-3, 1e-4), ()),
    ("char_rnn_classification.py", [], (1e-3, 1e-5), ()),
    ("wgan_gp.py", [], (2e-3, 1e-4), ()),
    ("spatial_transformer.py", [], (2e-3, 1e-4), ()),
    ("resnet_schedules.py", [], (2e-3, 1e-4), ()),
    ("normalizing_flow.py", [], (2e-3, 1e-4), ()),
    ("fno_1d.py", [], (2e-3, 1e-5), ()),
    ("spectrogram_classifier.py", [], (2e-3, 1e-5), ()),
    ("mixture_density.py", [], (2e-3, 1e-4), ()),
    ("orthogonal_rnn.py", [], (3e-3, 1e-5), ()),
    ("vit_patches.py", [], (2e-3, 1e-4), ()),
    ("unet_diffusion.py", [], (2e-3, 1e-4), ()),
    ("pointnet.py", [], (2e-3, 1e-4), ()),
    ("contrastive_simclr.py", [], (2e-3, 1e-4), ()),
    ("nanogpt_sdpa.py", [], (2e-3, 1e-4), ()),
    ("lstm_packed_tagger.py", [], (2e-3, 1e-4), ()),
    ("seq2seq_attention.py", [], (2e-3, 1e-4), ()),
    ("moe_router.py", [], (2e-3, 1e-4), ()),
    ("maml_sine.py", [], (2e-3, 1e-4), ()),
    ("distill_mixup.py", [], (2e-3, 1e-4), ()),
    ("checkpoint_resume.py", [], (2e-3, 1e-6), ()),
    ("tabular_embeddings.py", [], (2e-3, 1e-6), ()),
    ("neural_style_lbfgs.py", [], (2e-3, 1e-6), ()),
    ("neural_ode_rk4.py", [], (2e-3, 1e-4), ()),
    ("ctc_speech.py", [], (2e-3, 1e-4), ()),
    ("triplet_siamese.py", [], (2e-3, 1e-4), ()),
    ("bert_mlm.py", [], (2e-3, 1e-4), ()),
    ("image_captioning.py", [], (2e-3, 1e-4), ()),
    # NOTE: 5 epochs: the adding problem's training turns chaotic after that; PyTorch with
    # oneDNN off (another convolution algorithm) already differs by 2% at epoch 8
    ("tcn_weightnorm.py", ["--epochs", "5"], (2e-3, 1e-5), ()),
    ("tcn_weightnorm.py", ["--pad", "left", "--epochs", "5"], (2e-3, 1e-5), ()),
    ("deep_sets_scatter.py", [], (2e-3, 1e-4), ()),
    ("convnext_droppath.py", [], (2e-3, 1e-4), ()),
    ("unet_segmentation.py", [], (2e-3, 1e-4), ()),
    ("wavenet_gated.py", [], (2e-3, 1e-4), ()),
    ("textcnn_samplers.py", [], (2e-3, 1e-4), ()),
    ("pinn_burgers.py", [], (2e-3, 1e-6), ()),
    ("capsule_routing.py", [], (2e-3, 1e-4), ()),
    ("mae_linear_attention.py", [], (2e-3, 1e-4), ()),
    ("bpr_recommender.py", [], (2e-3, 1e-4), ()),
    ("word2vec_sgns.py", [], (2e-3, 1e-4), ()),
    ("llama_rope_kvcache.py", [], (2e-3, 1e-4), ()),
    ("swin_window_attention.py", [], (2e-3, 1e-4), ()),
    ("ppo_gae.py", [], (5e-3, 1e-4), ()),
    ("per_sample_grads_func.py", [], (2e-3, 1e-5), ()),
    ("lora_parametrize.py", [], (2e-3, 1e-5), ()),
    ("mobilenet_v3.py", [], (2e-3, 1e-5), ()),
    ("gaussian_process.py", [], (2e-3, 1e-6), ()),
    ("vqvae_straight_through.py", [], (2e-3, 1e-4), ()),
    ("ddpm_ema_unet.py", [], (2e-3, 1e-4), ()),
    ("nerf_volume_render.py", [], (2e-3, 1e-4), ()),
    ("mamba_selective_scan.py", [], (2e-3, 1e-4), ()),
    ("clip_contrastive.py", ["--precision", "fp32"], (2e-3, 1e-4), ()),
    # NOTE: 3 epochs under bfloat16 autocast: one-ulp bfloat16 differences (PyTorch's CPU
    # attention rounds the softmax numerators to bfloat16 before the product with V) grow to
    # 1e-3 by epoch 8; PyTorch itself drifts 1.7e-3 by epoch 3 from inputs scaled by 1 + 1e-6
    ("clip_contrastive.py", ["--epochs", "3"], (2e-3, 1e-4), ()),
    # NOTE: 2 epochs: BYOL's training is chaotic here (PyTorch itself, from inputs scaled by
    # 1 + 1e-6, drifts 1e-3 within 16 steps; its mul_/add_ and _foreach_lerp_ EMAs differ by
    # 2e-5 after 4); manygrad's lerp lacks PyTorch's fused multiply-add (1-ulp differences)
    ("byol_ema.py", ["--epochs", "2"], (2e-3, 1e-4), ()),
    ("byol_ema.py", ["--epochs", "2", "--foreach"], (2e-3, 1e-4), ()),
    ("detection_head.py", [], (2e-3, 1e-4), ()),
    ("beam_search_seq2seq.py", [], (2e-3, 1e-4), ()),
    # NOTE: 1 epoch (4 Adam steps per mask type): TabNet's training is chaotic here (sparsemax
    # supports flip; PyTorch itself, from inputs scaled by 1 + 1e-6, drifts 1e-2 by epoch 2)
    ("tabnet_sparsemax.py", ["--epochs", "1"], (2e-3, 1e-4), ()),
    ("audio_mfcc_cnn.py", [], (2e-3, 1e-4), ()),
    ("graph_sage_scatter.py", [], (2e-3, 1e-4), ()),
    ("efficientnet_mbconv.py", [], (2e-3, 1e-4), ()),
    ("efficientnet_mbconv.py", ["--optimizer", "adamw", "--schedule", "warm-restarts"], (2e-3, 1e-4), ()),
    ("conformer_ctc.py", [], (2e-3, 1e-4), ()),
    ("conformer_ctc.py", ["--objective", "frame-ce"], (2e-3, 1e-4), ()),
    ("transformer_copy_reverse.py", [], (2e-3, 1e-4), ()),
    ("ebm_langevin.py", [], (2e-3, 1e-4), ()),
    ("ebm_langevin.py", ["--data", "images", "--epochs", "2"], (2e-3, 1e-4), ()),
    ("siren_laplacian.py", [], (2e-3, 1e-4), ()),
    ("siren_laplacian.py", ["--mode", "gradient"], (2e-3, 1e-4), ()),
    ("densenet_bc_checkpoint.py", [], (2e-3, 1e-4), ()),
    ("densenet_bc_checkpoint.py", ["--no-checkpoint"], (2e-3, 1e-4), ()),
    ("retinanet_fpn_focal.py", [], (2e-3, 1e-4), ()),
    ("convlstm_video.py", [], (2e-3, 1e-4), ()),
    ("convlstm_video.py", ["--chunk", "--loss", "mse"], (2e-3, 1e-4), ()),
    ("transe_kg.py", [], (2e-3, 1e-4), ()),
    ("transe_kg.py", ["--p", "2", "--functional"], (2e-3, 1e-4), ()),
    ("gumbel_softmax_vae.py", [], (2e-3, 1e-4), ()),
    ("gumbel_softmax_vae.py", ["--soft"], (2e-3, 1e-4), ()),
    ("trpo_natural_gradient.py", [], (2e-3, 1e-4), ()),
    ("func_meta_vmap.py", [], (2e-3, 1e-4), ()),
    ("embeddingbag_ctr.py", [], (2e-3, 1e-4), ()),
    ("perceiver_latents.py", [], (2e-3, 1e-4), ()),
    ("flow_warp_pyramid.py", [], (2e-3, 1e-4), ()),
    ("hamiltonian_nn.py", [], (2e-3, 1e-4), ()),
    ("hamiltonian_nn.py", ["--activation", "leaky_relu"], (2e-3, 1e-4), ()),
    ("egnn_scatter.py", [], (2e-3, 1e-4), ()),
    ("egnn_scatter.py", ["--reduce", "amax"], (2e-3, 1e-4), ()),
    ("sac_tanh_normal.py", [], (2e-3, 1e-4), ()),
    ("sac_tanh_normal.py", ["--fixed-alpha"], (2e-3, 1e-4), ()),
    ("sinkhorn_ot.py", [], (2e-3, 1e-4), ()),
    ("sinkhorn_ot.py", ["--epsilon", "0.05"], (2e-3, 1e-4), ()),
    ("qat_fake_quant.py", [], (2e-3, 1e-4), ()),
    ("qat_fake_quant.py", ["--bits", "4"], (2e-3, 1e-4), ()),
    ("t5_relative_bias.py", [], (2e-3, 1e-4), ()),
    ("t5_relative_bias.py", ["--label-smoothing", "0.1"], (2e-3, 1e-4), ()),
    ("alibi_sliding_window.py", [], (2e-3, 1e-4), ()),
    ("alibi_sliding_window.py", ["--manual"], (2e-3, 1e-4), ()),
    ("rwkv_timemix.py", [], (2e-3, 1e-4), ()),
    ("rwkv_timemix.py", ["--chunk", "4", "--shift", "roll"], (2e-3, 1e-4), ()),
    ("speculative_decoding.py", [], (2e-3, 1e-4), ()),
    ("speculative_decoding.py", ["--greedy"], (2e-3, 1e-4), ()),
    ("ctc_beam_lm.py", [], (2e-3, 1e-4), ()),
    ("ctc_beam_lm.py", ["--reduction", "sum"], (2e-3, 1e-4), ()),
    # NOTE: batch norm, or 1 epoch with instance norm: the instance-norm runs are chaotic
    # (PyTorch itself, from inputs with 1e-6 noise added, drifts 1e-3 in the first epoch)
    ("pix2pix_patchgan.py", ["--norm", "batch"], (2e-3, 1e-4), ()),
    ("pix2pix_patchgan.py", ["--netG", "resnet", "--gan-mode", "lsgan", "--epochs", "1"], (2e-3, 1e-4), ()),
    # NOTE: 3 epochs: PyTorch's own epoch-4 loss moves 0.56% between one and two threads
    # (0.770877 against 0.775180), past the tolerance
    ("stylegan_modconv.py", ["--epochs", "3"], (2e-3, 1e-4), ()),
    ("stylegan_modconv.py", ["--upsample", "transposed", "--no-demod"], (2e-3, 1e-4), ()),
    ("yolo_anchor_free.py", [], (2e-3, 1e-4), ()),
    ("roi_align_grid_sample.py", [], (2e-3, 1e-4), ()),
    # NOTE: 3 epochs: OpenBLAS rounds some products differently with one thread and with
    # two, and manygrad's own epoch-4 mask loss moves 0.25% between the two
    ("roi_align_grid_sample.py", ["--align-corners", "--epochs", "3"], (2e-3, 1e-4), ()),
    ("deformable_offsets.py", [], (2e-3, 1e-4), ()),
    ("deformable_offsets.py", ["--padding", "border"], (2e-3, 1e-4), ()),
    ("nbeats_forecast.py", [], (2e-3, 1e-4), ()),
    ("deepar_negbinomial.py", [], (2e-3, 1e-4), ()),
    ("deepar_negbinomial.py", ["--likelihood", "studentt"], (2e-3, 1e-4), ()),
    ("s4d_fft_conv.py", [], (2e-3, 1e-4), ()),
    ("s4d_fft_conv.py", ["--complex-params"], (2e-3, 1e-4), ()),
    ("s4d_fft_conv.py", ["--mixer", "hyena"], (2e-3, 1e-4), ()),
    ("transformer_xl_memory.py", [], (2e-3, 1e-4), ()),
    ("mlstm_xlstm.py", [], (2e-3, 1e-4), ()),
    ("tft_gating.py", [], (2e-3, 1e-4), ()),
    # NOTE: with padded variable-length series this model amplifies float rounding: scaling
    # PyTorch's own ELU outputs by (1 + 1e-6) moves its epoch-0 validation loss from
    # 0.27585 to 0.27634 and later epochs by up to 7%; one epoch, at 2% of PyTorch's values
    ("tft_gating.py", ["--heads", "1", "--variable-lengths", "--epochs", "1"], (2e-2, 1e-3), ()),
    ("bilstm_crf.py", ["--reduction", "token_mean"], (2e-3, 1e-4), ()),
    ("pointer_network.py", [], (2e-3, 1e-4), ()),
    ("copy_mechanism_seq2seq.py", [], (2e-3, 1e-4), ()),
    ("text_vae_kl_annealing.py", [], (2e-3, 1e-4), ()),
    ("reformer_lsh_attention.py", ["--unsort", "scatter"], (2e-3, 1e-4), ()),
    ("highway_char_cnn.py", ["--cutoffs", "4", "12", "30", "--head-bias"], (2e-3, 1e-4), ()),
    # NOTE: 2 epochs: PixelCNN's Adam training is chaotic here (ReLU masks flip on near-zero
    # activations); PyTorch itself, from inputs scaled by 1 + 1e-6, drifts 7e-4 in the test loss
    # by epoch 2 and 8e-3 in the sampled images' loss by epoch 4
    ("pixelcnn_masked_conv.py", ["--mask-mode", "parametrize", "--epochs", "2"], (2e-3, 1e-4), ()),
    ("barlow_twins.py", [], (2e-3, 1e-4), ()),
    ("dino_centering.py", ["--ema", "lerp", "--no-norm-last-layer", "--parametrized"], (2e-3, 1e-4), ()),
    ("kan_splines.py", [], (2e-3, 1e-4), ()),
    ("pgd_adversarial_training.py", ["--loss", "trades"], (2e-3, 1e-4), ()),
    ("ddim_cfg_sampling.py", [], (2e-3, 1e-4), ()),
    ("glow_actnorm_1x1.py", ["--lu-factor", "--epochs", "2"], (2e-3, 1e-4), ()),
    ("schnet_rbf.py", [], (2e-3, 1e-4), ()),
    ("graph_transformer_lappe.py", [], (2e-3, 1e-4), ()),
    ("rssm_world_model.py", [], (2e-3, 1e-4), ()),
    ("alphazero_lite.py", [], (2e-3, 1e-4), ()),
    ("ilqr_control.py", ["--solver", "cholesky", "--epochs", "3"], (2e-3, 1e-4), ()),
    ("sparse_gcn_coo.py", [], (2e-3, 1e-4), ()),
    ("deep_cross_network.py", [], (2e-3, 1e-4), ()),
    ("hypernetwork_functional_call.py", [], (2e-3, 1e-4), ()),
    ("set_transformer_isab.py", [], (2e-3, 1e-4), ()),
    ("sparse_autoencoder_topk.py", [], (2e-3, 1e-4), ()),
    ("multitask_uncertainty.py", [], (2e-3, 1e-4), ()),
    ("multitask_uncertainty.py", ["--weighting", "gaussian-nll"], (2e-3, 1e-4), ()),
    ("neural_process.py", ["--latent", "--attention"], (2e-3, 1e-4), ()),
    ("graph_isomorphism_gin.py", ["--readout", "mean", "--learn-eps"], (2e-3, 1e-4), ()),
    ("graph_isomorphism_gin.py", ["--readout", "max"], (2e-3, 1e-4), ()),
    ("deepfm_field_aware.py", ["--model", "ffm"], (2e-3, 1e-4), ()),
    ("temporal_point_process.py", ["--integral", "trapezoid", "--beta", "1"], (2e-3, 1e-4), ()),
    ("torch_fx_feature_pruning.py", [], (2e-3, 1e-4), ()),
    ("contrastive_moco_queue.py", [], (2e-3, 1e-4), ()),
    ("sparse_moe_top2.py", [], (2e-3, 1e-4), ()),
    ("ssl_rotation_prediction.py", [], (2e-3, 1e-4), ()),
    ("conv_tasnet_separation.py", [], (2e-3, 1e-4), ()),
    # NOTE: three epochs, 5e-3: the margins' branches amplify rounding; PyTorch's own losses
    # move by 0.1-1.0% over those epochs with oneDNN off (another convolution algorithm),
    # and manygrad's, within 0.35% of PyTorch's, move as much with its CPU kernels off
    ("arcface_metric.py", ["--epochs", "3"], (5e-3, 1e-4), ()),
    ("pointnet2_fps.py", [], (2e-3, 1e-4), ()),
    ("iterable_stream.py", [], (2e-3, 1e-4), ()),
    ("pruning_global_magnitude.py", [], (2e-3, 1e-4), ()),
    # NOTE: three epochs: PyTorch's own epoch-4 gate loss moves by 0.4% when its BatchNorm
    # eps is 1.001e-5 instead of 1e-5 (normalised values change by ~1e-8), as far as
    # manygrad's rounding moves it
    ("tacotron_location_attention.py", ["--epochs", "3"], (2e-3, 1e-4), ()),
    ("rnn_t_transducer.py", [], (2e-3, 1e-4), ()),
    ("detr_hungarian.py", [], (2e-3, 1e-4), ()),
    ("lambdarank_ltr.py", [], (2e-3, 1e-4), ()),
    ("lambdarank_ltr.py", ["--objective", "ranknet"], (2e-3, 1e-4), ()),
    ("lambdarank_ltr.py", ["--objective", "listnet"], (2e-3, 1e-4), ()),
    ("evidential_dirichlet.py", [], (2e-3, 1e-4), ()),
    ("evidential_dirichlet.py", ["--loss", "digamma", "--activation", "selu", "--evidence", "relu", "--kl", "distributions"], (2e-3, 1e-4), ()),
    ("ntm_copy.py", [], (2e-3, 1e-4), ()),
    ("ntm_copy.py", ["--controller", "rnn", "--shift", "pad"], (2e-3, 1e-4), ()),
    ("dann_grad_reverse.py", [], (2e-3, 1e-4), ()),
    ("dann_grad_reverse.py", ["--class-loss", "multimargin"], (2e-3, 1e-4), ()),
    ("poincare_embeddings.py", [], (2e-3, 1e-4), ()),
    ("poincare_embeddings.py", ["--distance", "log1p", "--dim", "3"], (2e-3, 1e-4), ()),
    ("soft_dtw_forecast.py", [], (2e-3, 1e-4), ()),
    ("soft_dtw_forecast.py", ["--impl", "autograd"], (2e-3, 1e-4), ()),
    ("tsne_parametric.py", [], (2e-3, 1e-4), ()),
    ("tsne_parametric.py", ["--precision", "double-affinities"], (2e-3, 1e-4), ()),
    ("tree_lstm_sentiment.py", [], (2e-3, 1e-4), ()),
    ("tree_lstm_sentiment.py", ["--aggregate", "mean"], (2e-3, 1e-4), ()),
    ("hessian_free_gauss_newton.py", [], (2e-3, 1e-4), ()),
    ("hessian_free_gauss_newton.py", ["--jvp", "linearize"], (2e-3, 1e-4), ()),
    ("hessian_free_gauss_newton.py", ["--jvp", "double-backward"], (2e-3, 1e-4), ()),
    # NOTE: the int8 losses agreed to all 6 printed digits (float32 conv sums can move an
    # observer's max by 1 ulp, and so a scale; one requantization step is ~1e-2 of the output)
    ("quantization_ptq.py", [], (2e-3, 1e-4), ()),
    ("sngan_mixture.py", [], (2e-3, 1e-4), ()),
    ("sngan_mixture.py", ["--legacy"], (2e-3, 1e-4), ()),
    ("bayes_by_backprop.py", [], (2e-3, 1e-4), ()),
    ("bayes_by_backprop.py", ["--prior", "gaussian", "--noise", "softplus"], (2e-3, 1e-4), ()),
    ("deep_cca.py", [], (2e-3, 1e-4), ()),
    ("deep_cca.py", ["--objective", "cholesky", "--top-k", "2"], (2e-3, 1e-4), ()),
    ("deep_cca.py", ["--objective", "mi"], (2e-3, 1e-4), ()),
    ("amp_gradscaler_cyclic.py", [], (2e-3, 1e-4), ()),
    # NOTE: 2 epochs: at the chained schedule's learning rates this training amplifies
    # rounding about 2x per step; PyTorch itself, from initial weights scaled by 1 - 1e-6,
    # moves its epoch-3 val loss by 2%
    ("amp_gradscaler_cyclic.py", ["--schedule", "chained", "--epochs", "2"], (2e-3, 1e-4), ()),
    # NOTE: 2 epochs at 1%: under bfloat16 autocast the two frameworks' layers run in the same
    # dtypes but round differently by one bfloat16 ulp (4e-3) in 0.01-2% of the elements;
    # PyTorch itself, from inputs or initial weights scaled by 1 +- 1e-6, moves its epoch-1
    # losses by up to 0.4% (manygrad's are within 0.5% of PyTorch's)
    ("amp_gradscaler_cyclic.py", ["--amp", "--epochs", "2"], (1e-2, 1e-3), ()),
    ("gradcam_rrr_hooks.py", [], (2e-3, 1e-4), ()),
    ("gradcam_rrr_hooks.py", ["--rrr", "10"], (2e-3, 1e-4), ()),
    ("voxnet_3d.py", ["--compile"], (2e-3, 1e-4), ()),
    ("involution_shufflenet.py", [], (2e-3, 1e-4), ()),
    ("rnn_stft_enhancement.py", [], (2e-3, 1e-4), ()),
    ("rnn_stft_enhancement.py", ["--rebuild", "complex"], (2e-3, 1e-4), ()),
    ("rbm_contrastive_divergence.py", [], (2e-3, 1e-4), ()),
    ("rbm_contrastive_divergence.py", ["--persistent", "--k", "1"], (2e-3, 1e-4), ()),
    # NOTE: PyTorch's float32 class-weighted cross entropy (ignore_index) sums its weights
    # less accurately than manygrad: its losses sit 3e-5 below the float64 value
    ("segnet_maxunpool.py", [], (2e-3, 1e-4), ()),
    ("segnet_maxunpool.py", ["--norm", "group", "--pad", "circular"], (2e-3, 1e-4), ()),
    ("deq_implicit.py", [], (2e-3, 1e-4), ()),
    ("deq_implicit.py", ["--solver", "forward"], (2e-3, 1e-4), ()),
    ("growing_nca.py", [], (2e-3, 1e-4), ()),
    ("growing_nca.py", ["--pad", "replicate"], (2e-3, 1e-4), ()),
    ("slot_attention.py", [], (2e-3, 1e-4), ()),
    ("slot_attention.py", ["--implicit"], (2e-3, 1e-4), ()),
    ("snn_surrogate_gradient.py", [], (2e-3, 1e-4), ()),
    ("snn_surrogate_gradient.py", ["--loss", "count"], (2e-3, 1e-4), ()),
    ("decision_transformer.py", [], (2e-3, 1e-4), ()),
    ("mlp_mixer_ema.py", [], (2e-3, 1e-4), ()),
    ("mlp_mixer_ema.py", ["--swa"], (2e-3, 1e-4), ()),
    # torchvision: transforms on PIL images, models.resnet18, its state dict through a
    # BytesIO (import torchvision -> manygrad.vision). NOTE: the first epoch agrees within
    # 1e-5; the second within 1.3e-3 (a ReLU network at batch 32: its gradient moves by 0.3%
    # between the two after one step that moved the loss by 1e-5), hence 1e-2
    ("cifar_resnet_torchvision.py", [], (1e-2, 1e-4), ()),
    ("training_boilerplate.py", [], (2e-3, 1e-4), ()),
    ("training_boilerplate.py", ["--accum", "1", "--epochs", "2"], (2e-3, 1e-4), ()),
    ("v2_masks_fpn.py", [], (2e-3, 1e-4), ()),
    ("poisson_bilinear_rprop.py", [], (2e-3, 1e-4), ()),
    ("deploy_export_jit.py", [], (2e-3, 1e-5), ()),
    ("optimizer_zoo.py", [], (2e-3, 1e-5), ()),
    ("model_surgery.py", [], (2e-3, 1e-5), ()),
    ("gatv2_index_reduce.py", [], (2e-3, 1e-5), ()),
    ("stft_denoise_windows.py", [], (2e-3, 1e-5), ()),
    ("data_pipeline_workers.py", [], (2e-3, 1e-5), ()),
    ("autograd_internals.py", [], (2e-3, 1e-5), ()),
    ("autoformer_autocorrelation.py", [], (2e-3, 1e-5), ()),
    ("layer_zoo_lazy.py", [], (2e-3, 1e-5), ()),
    # NOTE: the printed flop counts differ by the attention's: PyTorch's CPU flash kernel is
    # missing from its flop table (0), manygrad counts its products as PyTorch's GPU kernels
    ("nanogpt_flops_mfu.py", [], (2e-3, 1e-5), ()),
    ("ctmc_matrix_exp.py", [], (2e-3, 1e-5), ()),
    ("ctmc_matrix_exp.py", ["--param", "cayley"], (2e-3, 1e-5), ()),
    ("vicreg_cov.py", [], (2e-3, 1e-5), ()),
    ("vicreg_cov.py", ["--cov", "torch"], (2e-3, 1e-5), ()),
    ("coteaching_noisy_labels.py", [], (2e-3, 1e-5), ()),
    ("coteaching_noisy_labels.py", ["--select", "kthvalue"], (2e-3, 1e-5), ()),
    ("custom_op_swiglu.py", [], (2e-3, 1e-5), ()),
    ("profiler_schedule_mlp.py", [], (2e-3, 1e-5), ()),
    ("vnet_instancenorm3d.py", [], (2e-3, 1e-5), ()),
    ("vnet_instancenorm3d.py", ["--norm", "batch"], (2e-3, 1e-5), ()),
    ("fractional_maxpool_lrn.py", [], (2e-3, 1e-5), ()),
    ("fractional_maxpool_lrn.py", ["--output-size", "--pool", "3d"], (2e-3, 1e-5), ()),
    ("ddp_single_process.py", [], (2e-3, 1e-5), ()),
    ("ddp_single_process.py", ["--init", "env", "--accum", "1"], (2e-3, 1e-5), ()),
    ("masked_pooling_sets.py", [], (2e-3, 1e-5), ()),
    ("masked_pooling_sets.py", ["--pooling", "plain"], (2e-3, 1e-5), ()),
    ("model_soup_vmap.py", [], (2e-3, 1e-5), ()),
    # NOTE: 4 epochs: fake quantization makes this training chaotic once observers stop
    # (PyTorch itself, from inputs scaled by 1 + 1e-7, moves 0.3% in epoch 4). The int8
    # losses are 7e-4 off: the first observer's running max (a convolution's largest output)
    # lands 1 ulp from PyTorch's, so its scale does, and a few int8 roundings flip
    ("qat_eager_convert.py", ["--epochs", "4"], (2e-3, 1e-5), ()),
]  # fmt: skip


def _start(cmd, env):
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=HERE
    )


def _finish(proc) -> subprocess.CompletedProcess:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


class _Zygote:
    """The PyTorch side of the runs: forks of one process that imported PyTorch once
    (_zygote.py), which saves ~3 s of interpreter start and import per run."""

    def __init__(self, env):
        self.env = env
        self.proc = None

    def _ensure(self):
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.join(HERE, "_zygote.py")],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=self.env,
                cwd=HERE, bufsize=1,
            )  # fmt: skip

    def _reply(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the PyTorch zygote (tests/ports/_zygote.py) exited")
        return json.loads(line)

    def start(self, argv, folder):
        self._ensure()
        out, err = os.path.join(folder, "ref.out"), os.path.join(folder, "ref.err")
        self.proc.stdin.write(json.dumps({"argv": argv, "stdout": out, "stderr": err}) + "\n")
        self.proc.stdin.flush()
        pid = self._reply(60)["pid"]
        return argv, pid, out, err

    def finish(self, started) -> subprocess.CompletedProcess:
        argv, pid, out, err = started
        reply = self._reply(TIMEOUT)
        if reply is None:
            os.kill(pid, signal.SIGKILL)
            self._reply(60)
            raise subprocess.TimeoutExpired(argv, TIMEOUT)
        with open(out) as f, open(err) as g:
            return subprocess.CompletedProcess(argv, reply["rc"], f.read(), g.read())

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def _env() -> dict:
    """The runs' environment: no PYTHONPATH, and one thread each.

    NOTE: the two runs go side by side, and two libraries each with two threads (OpenMP,
    OpenBLAS) on a 2-core machine spin against each other: one thread each makes the pair
    2-3x faster there. Both libraries' results are their one-thread results."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


@pytest.fixture(scope="module")
def zygote():
    z = _Zygote(_env())
    yield z
    z.close()


def _losses(out: str) -> np.ndarray:
    return np.array([float(m) for m in LOSS.findall(out)])


@pytest.mark.parametrize(
    "script,args,tol,pending", PORTS, ids=["".join([p[0], *p[1]]) for p in PORTS]
)
def test_port_matches_pytorch(script, args, tol, pending, zygote, tmp_path):
    path = os.path.join(HERE, "scripts", script)
    sync = os.path.join(HERE, "_sync.py")
    env = _env()
    # NOTE: the two runs go side by side (one core each on a 2-core CI machine)
    ref_run = zygote.start([path, *args], str(tmp_path))
    try:
        got_proc = _start(
            [sys.executable, "-m", "manygrad", "run", sync, path, *args], dict(env, PYTHONPATH=SRC)
        )
    except BaseException:
        zygote.finish(ref_run)
        raise
    try:
        ref = zygote.finish(ref_run)
    finally:
        got = _finish(got_proc)
    assert ref.returncode == 0, f"{script} fails under PyTorch:\n{ref.stderr[-3000:]}"
    if got.returncode == 3 and pending:
        missing = re.search(r"error: (\S+) is not supported", got.stderr)
        if missing and missing.group(1) in pending:
            pytest.skip(f"{script} waits for {missing.group(1)}")
    assert got.returncode == 0, f"{script} fails under manygrad:\n{got.stderr[-3000:]}"
    want, have = _losses(ref.stdout), _losses(got.stdout)
    assert len(want) >= 3 and len(have) == len(want), (ref.stdout[-2000:], got.stdout[-2000:])
    assert np.isfinite(have).all()
    rtol, atol = tol
    np.testing.assert_allclose(have, want, rtol=rtol, atol=atol, err_msg=script)
