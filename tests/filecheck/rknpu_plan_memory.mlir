// RUN: rkc-opt %s -p 'rknpu-legalize{target=rk3568},nn-to-rknpu,rknpu-layout{target=rk3568},rknpu-tile{target=rk3568},rknpu-plan-memory{target=rk3568}' | filecheck %s --check-prefix=RK3568
// RUN: rkc-opt %s -p 'rknpu-legalize{target=rk3588},nn-to-rknpu,rknpu-layout{target=rk3588},rknpu-tile{target=rk3588},rknpu-plan-memory{target=rk3588}' | filecheck %s --check-prefix=RK3588
// RUN: not rkc-opt %s -p 'rknpu-plan-memory{alignment=0}' 2>&1 | filecheck %s --check-prefix=BAD

!x = tensor<1x16x4x4x!quant.uniform<i8:f32, 0.05:0>>
!f = tensor<1x16x4x4x!quant.uniform<i8:f32, 0.1:0>>
!c = tensor<1x32x4x4x!quant.uniform<i8:f32, 0.1:0>>
!v = tensor<1x32x16x1x!quant.uniform<i8:f32, 0.1:0>>
!w = tensor<16x16x1x1x!quant.uniform<i8:f32, 0.01:0>>
func.func @main(%x: !x) -> !v {
  %wa = nn.constant dense<1> : tensor<16x16x1x1xi8> as !w
  %a = nn.conv2d %x, %wa {rkc.name = "a", strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (!x, !w) -> !f
  %wb = nn.constant dense<2> : tensor<16x16x1x1xi8> as !w
  %b = nn.conv2d %a, %wb {rkc.name = "b", strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (!f, !w) -> !f
  %c = nn.concat %a, %b {rkc.name = "cat", axis = 1 : i64} : (!f, !f) -> !c
  %v = nn.reshape %c {rkc.name = "flat", shape = array<i64: 1, 32, 16, 1>} : (!c) -> !v
  func.return %v : !v
}

// RK3568 (C2 = 8, 16-channel convs write 16 channels = 2 surfaces of 4x4x8 B): both
// conv results are written straight into the concat's buffer (slots at +0 and +256),
// the view is the concat's bytes; the concat reuses the input's bytes (dead after to_native).
// RK3568:      builtin.module attributes {rknpu.memory = {alignment = 64 : i64, feature_bytes = 1024 : i64, live_peak_bytes = 1024 : i64, npu_feature_bytes = 768 : i64, weight_bytes = 768 : i64}}
// RK3568:      func.func @main(%x: {{.*}} {rknpu.dram = [array<i64: 0, 256>]})
// RK3568:      %wa = nn.constant {{.*}} {rknpu.dram = [array<i64: 0, 256>]}
// RK3568:      rknpu.to_native %x {rknpu.dram = [array<i64: 512, 256>]
// Weights 16 x 16 B, the DPU stream 16 channels x 8 B.
// RK3568:      rknpu.conv {{.*}}rkc.name = "a", {{.*}}rknpu.dram = [array<i64: 0, 256>], rknpu.weights = array<i64: 0, 256, 256, 128>
// RK3568:      %wb = nn.constant {{.*}} {rknpu.dram = [array<i64: 384, 256>]}
// RK3568:      rknpu.conv {{.*}}rkc.name = "b", {{.*}}rknpu.dram = [array<i64: 256, 256>], rknpu.weights = array<i64: 384, 256, 640, 128>
// RK3568:      rknpu.concat {{.*}} {rkc.name = "cat", rknpu.dram = [array<i64: 0, 512>], channels
// RK3568:      rknpu.view {{.*}} {rkc.name = "flat", rknpu.dram = [array<i64: 0, 512>], offset
// RK3568:      rknpu.from_native {{.*}} {rknpu.dram = [array<i64: 512, 512>], channels = 32

// RK3588 (C2 = 16, 16-channel convs write 32 channels): conv a would spill into b's slot,
// so it keeps its own buffer and the concat copies it (rknpu.copies); b, the last input,
// is written in place and grows the concat's buffer to 768 B.
// RK3588:      rknpu.memory = {alignment = 64 : i64, feature_bytes = 1280 : i64, live_peak_bytes = 1280 : i64, npu_feature_bytes = 1280 : i64, weight_bytes = 1024 : i64}
// RK3588:      rknpu.conv {{.*}}rkc.name = "a", {{.*}}rknpu.dram = [array<i64: 768, 512>], rknpu.weights = array<i64: 0, 256, 256, 256>
// RK3588:      rknpu.conv {{.*}}rkc.name = "b", {{.*}}rknpu.dram = [array<i64: 256, 512>]
// RK3588:      rknpu.concat {{.*}} {rkc.name = "cat", rknpu.dram = [array<i64: 0, 768>], rknpu.copies = array<i64: 0>, channels

// BAD: rkc-opt: error: rknpu-plan-memory: alignment must be positive, got 0
