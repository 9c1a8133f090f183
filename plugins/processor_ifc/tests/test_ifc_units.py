"""Imperial and prefixed units are converted to SI before anything is summed."""

from __future__ import annotations

from pathlib import Path

import pytest
from ifc_support import FOOTER, run, write

FEET = b"""ISO-10303-21;
HEADER;
FILE_DESCRIPTION(('ViewDefinition [CoordinationView]'),'2;1');
FILE_NAME('feet.ifc','2024-01-01T00:00:00',(''),(''),'','hand-written','');
FILE_SCHEMA(('IFC2X3'));
ENDSEC;
DATA;
#1=IFCSIUNIT(*,.LENGTHUNIT.,$,.METRE.);
#2=IFCDIMENSIONALEXPONENTS(1,0,0,0,0,0,0);
#3=IFCMEASUREWITHUNIT(IFCLENGTHMEASURE(0.3048),#1);
#4=IFCCONVERSIONBASEDUNIT(#2,.LENGTHUNIT.,'FOOT',#3);
#5=IFCSIUNIT(*,.AREAUNIT.,$,.SQUARE_METRE.);
#6=IFCDIMENSIONALEXPONENTS(2,0,0,0,0,0,0);
#7=IFCMEASUREWITHUNIT(IFCAREAMEASURE(0.09290304),#5);
#8=IFCCONVERSIONBASEDUNIT(#6,.AREAUNIT.,'SQUARE FOOT',#7);
#9=IFCSIUNIT(*,.VOLUMEUNIT.,.CENTI.,.CUBIC_METRE.);
#10=IFCUNITASSIGNMENT((#4,#8,#9));
#11=IFCPROJECT('0000000000000000000001',$,'Feet',$,$,$,$,$,#10);
#12=IFCBUILDINGSTOREY('0000000000000000000002',$,'Upper',$,$,$,$,$,.ELEMENT.,10.);
#13=IFCBUILDINGSTOREY('0000000000000000000003',$,'Ground',$,$,$,$,$,.ELEMENT.,0.);
#14=IFCWALL('0000000000000000000004',$,'W',$,$,$,$,$);
#15=IFCQUANTITYLENGTH('Length',$,$,10.);
#16=IFCQUANTITYAREA('GrossSideArea',$,$,100.);
#17=IFCQUANTITYVOLUME('NetVolume',$,$,1000000.);
#18=IFCQUANTITYLENGTH('Height',$,#19,2500.);
#19=IFCSIUNIT(*,.LENGTHUNIT.,.MILLI.,.METRE.);
#20=IFCELEMENTQUANTITY('0000000000000000000005',$,'BaseQuantities',$,$,(#15,#16,#17,#18));
#21=IFCRELDEFINESBYPROPERTIES('0000000000000000000006',$,$,$,(#14),#20);
#22=IFCMATERIAL('Timber');
#23=IFCMATERIALLAYER(#22,0.5,$);
#24=IFCMATERIALLAYERSET((#23),'Half a foot');
#25=IFCMATERIALLAYERSETUSAGE(#24,.AXIS2.,.POSITIVE.,0.);
#26=IFCRELASSOCIATESMATERIAL('0000000000000000000007',$,$,$,(#14),#25);
"""


def test_feet_square_feet_and_cubic_centimetres(tmp_path: Path) -> None:
    data = run(write(tmp_path / "feet.ifc", FEET + FOOTER))
    assert data["parse"]["partial"] is False
    assert data["units"] == {
        "length": {"name": "FOOT", "to_si": 0.3048},
        "area": {"name": "SQUARE FOOT", "to_si": 0.09290304},
        "volume": {"name": "CENTI CUBIC_METRE", "to_si": pytest.approx(1e-6)},
    }
    wall = data["quantities"]["IfcWall"]
    assert wall["Length"]["value"] == pytest.approx(3.048)  # 10 ft
    assert wall["GrossSideArea"]["value"] == pytest.approx(9.290304)  # 100 sq ft
    assert wall["NetVolume"]["value"] == pytest.approx(1.0)  # 1,000,000 cm3
    assert wall["Height"]["value"] == pytest.approx(2.5)  # its own unit: 2500 mm
    (layer_set,) = [m for m in data["materials"] if m["kind"] == "layer_set"]
    assert layer_set["layers"][0]["thickness"] == pytest.approx(0.1524)  # half a foot
    # 10 ft above 0 ft: sorted by elevation in metres, whatever the file order.
    assert data["storeys"] == ["Ground", "Upper"]
