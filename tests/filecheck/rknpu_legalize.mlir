// RUN: rkc-opt %s -p 'rknpu-legalize{target=rk3588}' | filecheck %s
// RUN: rkc-opt %s -p 'rknpu-legalize{target=rk3568}' | filecheck %s --check-prefix=RK3568
// RUN: not rkc-opt %s -p 'rknpu-legalize{target=rk9999}' 2>&1 | filecheck %s --check-prefix=BAD

func.func @main(%x: tensor<1x3x16x16xf32>) -> tensor<1x16x1x1xf32> {
  %q = quant.quantize %x : tensor<1x3x16x16xf32> -> tensor<1x3x16x16x!quant.uniform<i8:f32, 0.05:0>>
  %w = nn.constant dense<1> : tensor<8x3x3x3xi8> as tensor<8x3x3x3x!quant.uniform<i8:f32, 0.01:0>>
  %a = nn.conv2d %q, %w {rkc.name = "conv_a", strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64, activation = "relu"} : (tensor<1x3x16x16x!quant.uniform<i8:f32, 0.05:0>>, tensor<8x3x3x3x!quant.uniform<i8:f32, 0.01:0>>) -> tensor<1x8x16x16x!quant.uniform<i8:f32, 0.1:-128>>
  %b = nn.conv2d %q, %w {rkc.name = "conv_b", strides = array<i64: 8, 8>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x3x16x16x!quant.uniform<i8:f32, 0.05:0>>, tensor<8x3x3x3x!quant.uniform<i8:f32, 0.01:0>>) -> tensor<1x8x2x2x!quant.uniform<i8:f32, 0.1:-128>>
  %p = nn.max_pool2d %a {rkc.name = "pool", kernel = array<i64: 8, 8>, strides = array<i64: 8, 8>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false} : (tensor<1x8x16x16x!quant.uniform<i8:f32, 0.1:-128>>) -> tensor<1x8x2x2x!quant.uniform<i8:f32, 0.1:-128>>
  %c = nn.concat %p, %b {rkc.name = "cat", axis = 1 : i64} : (tensor<1x8x2x2x!quant.uniform<i8:f32, 0.1:-128>>, tensor<1x8x2x2x!quant.uniform<i8:f32, 0.1:-128>>) -> tensor<1x16x2x2x!quant.uniform<i8:f32, 0.1:-128>>
  %g = nn.global_avg_pool %c {rkc.name = "gap"} : (tensor<1x16x2x2x!quant.uniform<i8:f32, 0.1:-128>>) -> tensor<1x16x1x1x!quant.uniform<i8:f32, 0.05:-128>>
  %f = quant.dequantize %g : tensor<1x16x1x1x!quant.uniform<i8:f32, 0.05:-128>> -> tensor<1x16x1x1xf32>
  %s = nn.softmax %f {rkc.name = "prob", axis = 1 : i64} : (tensor<1x16x1x1xf32>) -> tensor<1x16x1x1xf32>
  func.return %s : tensor<1x16x1x1xf32>
}

// Every op but the constant and the return is placed; only CPU ops carry a reason.
// CHECK:      quant.quantize %x {rkc.placement = "cpu", rkc.reason = "float <-> int8 conversion runs on the host (f32 is not an NPU data type)"}
// CHECK-NEXT: %w = nn.constant dense<1> : tensor<8x3x3x3xi8> as tensor<8x3x3x3x!quant.uniform<i8:f32, 0.01:0>>{{$}}
// CHECK-NEXT: %a = nn.conv2d %q, %w {rkc.name = "conv_a", rkc.placement = "npu", strides
// CHECK-NEXT: %b = nn.conv2d %q, %w {rkc.name = "conv_b", rkc.placement = "cpu", rkc.reason = "stride 8x8 exceeds 7 (CNA.CONV_CON3 CONV_X/Y_STRIDE, 3 bits) on RK3588", strides
// CHECK-NEXT: %p = nn.max_pool2d %a {rkc.name = "pool", rkc.placement = "npu", kernel
// The 8-channel first input does not fill a 16-channel int8 block on RK3588 (C2 = 16).
// CHECK-NEXT: %c = nn.concat %p, %b {rkc.name = "cat", rkc.placement = "cpu", rkc.reason = "concat at channel offsets of [8] not multiples of C2 = 16 on RK3588 changes the NC1HWC2 layout", axis
// CHECK-NEXT: %g = nn.global_avg_pool %c {rkc.name = "gap", rkc.placement = "npu"}
// CHECK-NEXT: quant.dequantize %g {rkc.placement = "cpu", rkc.reason = "float <-> int8 conversion
// CHECK-NEXT: %s = nn.softmax %f {rkc.name = "prob", rkc.placement = "cpu", rkc.reason = "nn.softmax has no NPU form (the DPU has no reduction across channels)", axis
// CHECK-NEXT: func.return %s

// On RK3568 (int8 C2 = 8) the concat is address offsets; the stride limit is the same.
// RK3568:     %b = nn.conv2d %q, %w {rkc.name = "conv_b", rkc.placement = "cpu", rkc.reason = "stride 8x8 exceeds 7 (CNA.CONV_CON3 CONV_X/Y_STRIDE, 3 bits) on RK3568", strides
// RK3568:     %c = nn.concat %p, %b {rkc.name = "cat", rkc.placement = "npu", axis

// BAD: unknown target 'rk9999'; valid targets: rk3566, rk3568, rk3576, rk3588
