// xdeploy-qt: a Qt 6 example app over the xdeploy C++ library. Open or drop an image: it shows the top labels
// with their probabilities, the latency and the device.
//   xdeploy-qt BUNDLE [IMAGE] [--screenshot OUT.png] [--pixels]
// --pixels: IMAGE is decoded by Qt and its pixels passed to the library (xdeploy::Image). With --screenshot (e.g. under QT_QPA_PLATFORM=offscreen) it loads IMAGE, grabs its window to OUT.png, prints what
// it shows and exits.
#include <QApplication>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QImage>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QMimeData>
#include <QPixmap>
#include <QPushButton>
#include <QTimer>
#include <QVBoxLayout>
#include <QWidget>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <memory>

#include "xdeploy/predictor.hpp"

class Window : public QWidget {
 public:
  explicit Window(std::unique_ptr<xdeploy::Predictor> p, const QString& bundle) : p_(std::move(p)) {
    setWindowTitle("xdeploy: " + bundle);
    setAcceptDrops(true);
    image_ = new QLabel("Drop an image here, or open one.");
    image_->setAlignment(Qt::AlignCenter);
    image_->setMinimumSize(256, 256);
    image_->setStyleSheet("QLabel { background: #f4f4f4; border: 1px solid #ccc; }");
    result_ = new QLabel(" ");
    result_->setObjectName("result");
    result_->setTextFormat(Qt::PlainText);
    result_->setStyleSheet("QLabel { font-size: 16px; }");
    status_ = new QLabel(QString::fromStdString(p_->task() + " model on " + p_->device()));
    auto* open = new QPushButton("Open image...");
    connect(open, &QPushButton::clicked, this, [this] {
      QString f = QFileDialog::getOpenFileName(this, "Open image", QString(), "Images (*.png *.jpg *.jpeg)");
      if (!f.isEmpty()) load(f);
    });
    auto* side = new QVBoxLayout;
    side->addWidget(result_);
    side->addStretch();
    side->addWidget(status_);
    side->addWidget(open);
    auto* row = new QHBoxLayout(this);
    row->addWidget(image_, 1);
    row->addLayout(side, 1);
    resize(640, 320);
  }

  // Predict `file` and show it; returns the text shown. `pixels`: decode it with Qt and pass the library its pixels
  // (xdeploy::Image), as an app does with images it has in memory; else the library reads the file (decoded as Pillow does).
  QString load(const QString& file, bool pixels = false) {
    QPixmap pix(file);
    if (!pix.isNull()) image_->setPixmap(pix.scaled(256, 256, Qt::KeepAspectRatio, Qt::FastTransformation));
    try {
      auto t0 = std::chrono::steady_clock::now();
      xdeploy::Json d = pixels ? p_->predict_image(to_image(QImage(file))) : p_->predict_files({file.toStdString()}).at(0);
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      result_->setText(describe(d));
      status_->setText(QString("%1 ms on %2 (decode, preprocess.onnx, model.onnx)").arg(ms, 0, 'f', 1).arg(QString::fromStdString(p_->device())));
    } catch (const xdeploy::Error& e) {
      result_->setText(QString::fromStdString("Error: " + e.problem() + (e.fix().empty() ? "" : "\nFix: " + e.fix())));
    }
    return result_->text();
  }

 protected:
  void dragEnterEvent(QDragEnterEvent* e) override { if (e->mimeData()->hasUrls()) e->acceptProposedAction(); }
  void dropEvent(QDropEvent* e) override {
    const auto urls = e->mimeData()->urls();
    if (!urls.isEmpty() && urls.first().isLocalFile()) load(urls.first().toLocalFile());
  }

 private:
  // A QImage as the library's packed HWC pixels: RGB888 rows are padded to 4 bytes, so they are copied row by row; alpha is
  // dropped (as Pillow's convert), and L is Pillow's luma.
  xdeploy::Image to_image(const QImage& source) const {
    if (source.isNull()) throw xdeploy::Error("Qt cannot read this image.", "Pass a PNG or JPEG file.");
    QImage rgb = source.convertToFormat(QImage::Format_RGB888);
    xdeploy::Image img;
    img.height = rgb.height(); img.width = rgb.width(); img.channels = p_->mode() == "L" ? 1 : 3;
    img.pixels.resize(static_cast<std::size_t>(img.height) * img.width * img.channels);
    for (int y = 0; y < img.height; ++y) {
      const uchar* row = rgb.constScanLine(y);
      std::uint8_t* out = img.pixels.data() + static_cast<std::size_t>(y) * img.width * img.channels;
      if (img.channels == 3) { std::copy(row, row + 3 * img.width, out); continue; }
      for (int x = 0; x < img.width; ++x)
        out[x] = static_cast<std::uint8_t>((19595u * row[3 * x] + 38470u * row[3 * x + 1] + 7471u * row[3 * x + 2] + 0x8000u) >> 16);
    }
    return img;
  }

  // The top labels with their probabilities (or the task's answer), one per line.
  QString describe(const xdeploy::Json& d) const {
    QString s;
    auto pct = [](double p) { return QString::number(p * 100, 'f', 1) + "%"; };
    if (d.contains("label") || d.contains("labels")) {
      const auto& labels = p_->manifest()["labels"];
      std::vector<double> probs = d["probs"].get<std::vector<double>>();
      std::vector<std::size_t> idx(probs.size());
      std::iota(idx.begin(), idx.end(), 0);
      std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return probs[a] > probs[b]; });
      if (d.contains("labels")) {
        QStringList on;
        for (const auto& l : d["labels"]) on << QString::fromStdString(l.get<std::string>());
        s += "Labels: " + (on.isEmpty() ? QString("(none)") : on.join(", ")) + "\n";
      }
      for (std::size_t k = 0; k < idx.size() && k < 5; ++k)
        s += QString::fromStdString(labels[idx[k]].get<std::string>()) + "  " + pct(probs[idx[k]]) + "\n";
    } else if (d.contains("classes")) {
      s += QString("%1x%2 mask\n").arg(d["mask"].size()).arg(d["mask"][0].size());
      for (auto it = d["classes"].begin(); it != d["classes"].end(); ++it)
        s += QString::fromStdString(it.key()) + "  " + pct(it.value().get<double>()) + "\n";
    } else {
      s += "Value: " + QString::fromStdString(xdeploy::python_json(d["value"], -1)) + "\n";
    }
    return s.trimmed();
  }

  std::unique_ptr<xdeploy::Predictor> p_;
  QLabel *image_, *result_, *status_;
};

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QStringList args = app.arguments();
  QString shot;
  bool pixels = args.removeAll("--pixels") > 0;
  int k = static_cast<int>(args.indexOf("--screenshot"));
  if (k > 0) {
    if (k + 1 >= args.size()) { std::fprintf(stderr, "xdeploy-qt: --screenshot needs a file name.\n"); return 1; }
    shot = args[k + 1];
    args.remove(k, 2);
  }
  if (args.size() < 2) { std::fprintf(stderr, "usage: xdeploy-qt BUNDLE [IMAGE] [--screenshot OUT.png] [--pixels]\n"); return 1; }
  std::unique_ptr<xdeploy::Predictor> p;
  try {
    p = std::make_unique<xdeploy::Predictor>(args[1].toStdString());
  } catch (const xdeploy::Error& e) {
    std::fprintf(stderr, "xdeploy-qt: %s\n", e.what());
    return 1;
  }
  Window w(std::move(p), args[1]);
  w.show();
  QString shown;
  if (args.size() > 2) shown = w.load(args[2], pixels);
  if (shot.isEmpty()) return app.exec();
  app.processEvents();
  bool ok = w.grab().save(shot, "PNG");
  std::printf("%s\n", shown.toUtf8().constData());
  return ok ? 0 : 1;
}
