// RUN: rkc-opt %s --split-input-file -p nn-decompose-global-pool | filecheck %s

// 30x30 = (15 * 2) x (15 * 2): a 15x15 average pool with stride 15, then the global
// pool over 2x2, which keeps the name; the first stage is named after it.
// CHECK-LABEL: func.func @avg_30
// CHECK-NEXT:    %[[P:.*]] = nn.avg_pool2d %x {rkc.name = "gap/pool0", kernel = array<i64: 15, 15>, strides = array<i64: 15, 15>, pads = array<i64: 0, 0, 0, 0>, {{.*}}} : (tensor<1x4x30x30xf32>) -> tensor<1x4x2x2xf32>
// CHECK-NEXT:    %y = nn.global_avg_pool %[[P]] {rkc.name = "gap"} : (tensor<1x4x2x2xf32>) -> tensor<1x4x1x1xf32>
// CHECK-NEXT:    func.return %y
func.func @avg_30(%x: tensor<1x4x30x30xf32>) -> tensor<1x4x1x1xf32> {
  %y = nn.global_avg_pool %x {rkc.name = "gap"} : (tensor<1x4x30x30xf32>) -> tensor<1x4x1x1xf32>
  func.return %y : tensor<1x4x1x1xf32>
}

// -----

// 12x96 (PP-OCR cls): H fits, W = 16 * 6: a 1x16 stage, then 12x6.
// CHECK-LABEL: func.func @max_12x96
// CHECK-NEXT:    %[[P:.*]] = nn.max_pool2d %x {{{.*}}kernel = array<i64: 1, 16>, strides = array<i64: 1, 16>{{.*}}} : (tensor<1x2x12x96xf32>) -> tensor<1x2x12x6xf32>
// CHECK-NEXT:    %y = nn.global_max_pool %[[P]] : (tensor<1x2x12x6xf32>) -> tensor<1x2x1x1xf32>
func.func @max_12x96(%x: tensor<1x2x12x96xf32>) -> tensor<1x2x1x1xf32> {
  %y = nn.global_max_pool %x : (tensor<1x2x12x96xf32>) -> tensor<1x2x1x1xf32>
  func.return %y : tensor<1x2x1x1xf32>
}

// -----

// 46x46 = (2 * 23)^2: a 2x2 pool, then a depthwise 23x23 conv (23 > 16 is beyond the
// PPU, within the CNA's 31) with every weight 1 / 529.
// CHECK-LABEL: func.func @avg_46
// CHECK-NEXT:    %[[P:.*]] = nn.avg_pool2d %x {rkc.name = "gap/pool0", kernel = array<i64: 2, 2>{{.*}} -> tensor<1x3x23x23xf32>
// CHECK-NEXT:    %[[W:.*]] = nn.constant dense<0.00189035921> : tensor<3x1x23x23xf32>
// CHECK-NEXT:    %y = nn.conv2d %[[P]], %[[W]] {rkc.name = "gap", {{.*}}group = 3 : i64} : (tensor<1x3x23x23xf32>, tensor<3x1x23x23xf32>) -> tensor<1x3x1x1xf32>
func.func @avg_46(%x: tensor<1x3x46x46xf32>) -> tensor<1x3x1x1xf32> {
  %y = nn.global_avg_pool %x {rkc.name = "gap"} : (tensor<1x3x46x46xf32>) -> tensor<1x3x1x1xf32>
  func.return %y : tensor<1x3x1x1xf32>
}

// -----

// Left alone: within the window, a max over 23 (no conv form), a prime above 31.
// CHECK-LABEL: func.func @kept
// CHECK-NEXT:    nn.global_avg_pool %x
// CHECK-NEXT:    nn.global_max_pool %a
// CHECK-NEXT:    nn.global_avg_pool %b
// CHECK-NEXT:    func.return
func.func @kept(%x: tensor<1x1x16x16xf32>, %a: tensor<1x1x23x23xf32>, %b: tensor<1x1x37x1xf32>) -> (tensor<1x1x1x1xf32>, tensor<1x1x1x1xf32>, tensor<1x1x1x1xf32>) {
  %p = nn.global_avg_pool %x : (tensor<1x1x16x16xf32>) -> tensor<1x1x1x1xf32>
  %q = nn.global_max_pool %a : (tensor<1x1x23x23xf32>) -> tensor<1x1x1x1xf32>
  %r = nn.global_avg_pool %b : (tensor<1x1x37x1xf32>) -> tensor<1x1x1x1xf32>
  func.return %p, %q, %r : tensor<1x1x1x1xf32>, tensor<1x1x1x1xf32>, tensor<1x1x1x1xf32>
}
